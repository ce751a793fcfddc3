"""The streamed merge (DuckDB sorts, the walk resumes batch by batch) gives the in-memory
merge kernel's KS maximiser, Wasserstein sum and histogram counts, whatever the batch size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from retraining_assets.core.drift.columns import FitOptions
from retraining_assets.core.drift.fit import _fit_numeric
from retraining_assets.core.drift.kernels import _merge_stats
from retraining_assets.core.engines import DuckDBRunner
from retraining_assets.core.engines.streamed import streamed_merge


def _finite(x: np.ndarray) -> np.ndarray:
    return x[np.isfinite(x)]


def _case(name: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    ref = np.round(rng.normal(0.0, 1.0, 3_000), 1)  # ties inside and across samples
    cur = np.round(rng.normal(0.2, 1.0, 5_000), 1)
    if name == "infinities":
        ref[:4], cur[:3], cur[3:9] = np.inf, -np.inf, np.inf
    if name == "disjoint":  # every current value above every reference value
        cur = cur + 100.0
    if name == "identical":
        cur = ref.copy()
    return np.sort(ref), cur


@pytest.mark.parametrize("name", ["ties", "infinities", "disjoint", "identical"])
@pytest.mark.parametrize("batch_rows", [1, 7, 997, 1_000_000])
def test_streamed_merge_equals_the_memory_kernel(name: str, batch_rows: int) -> None:
    ref, cur = _case(name)
    prof = _fit_numeric(pd.Series(ref), "x", FitOptions())
    cur_sorted = np.sort(cur)
    n_neg = int(np.count_nonzero(cur == -np.inf))
    cur_finite = _finite(cur_sorted)
    plot_edges = np.linspace(-1.5, 1.7, 31)
    with DuckDBRunner(batch_rows=batch_rows) as runner:
        table = runner.upload(cur)  # unsorted: DuckDB sorts it
        got = streamed_merge(
            runner, f"SELECT v FROM {table} ORDER BY v", prof, cur.size, n_neg,
            cur_finite.size, plot_edges,
        )  # fmt: skip
    i, j, _ = _merge_stats(prof.sorted_values, cur_sorted)
    assert (got.i, got.j) == (i, j)
    d = abs(got.i / ref.size - got.j / cur.size)
    assert d == stats.ks_2samp(ref, cur, method="asymp").statistic  # and scipy's D
    ref_finite = _finite(prof.sorted_values)
    w = _merge_stats(ref_finite, cur_finite)[2]
    assert got.w_sum / (ref_finite.size * cur_finite.size) == pytest.approx(w, rel=1e-12, abs=0)
    assert got.below_edges == np.searchsorted(cur_sorted, prof.edges, side="left").tolist()
    inner = np.searchsorted(cur_finite, plot_edges, side="left")
    assert got.plot_below == inner[:-1].tolist()
    assert got.plot_at_most == int(np.searchsorted(cur_finite, plot_edges[-1], side="right"))
