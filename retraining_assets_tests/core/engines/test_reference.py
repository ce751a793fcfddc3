"""A reference larger than ``max_reference_values`` fitted through DuckDB: the bin counts
come from the streamed sorted column (where each edge's tie group starts), not from a scan,
and equal the in-memory fit's for any batch size, with ties straddling batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retraining_assets.core.drift import fit_reference
from retraining_assets.core.engines import DuckDBRunner, file_relation, fit_reference_in_engine
from retraining_assets.core.engines.reference import _counts_below


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 6_000
    ties = np.round(rng.normal(0.0, 1.0, n), 0)  # 7-odd distinct values: edges on ties
    smooth = rng.normal(5.0, 2.0, n)
    smooth[rng.random(n) < 0.05] = np.nan
    smooth[:5], smooth[5:8] = -np.inf, np.inf
    return pd.DataFrame({"ties": ties, "smooth": smooth, "few": rng.integers(0, 3, n) * 1.5})


@pytest.mark.parametrize("batch_rows", [1, 7, 997, 1_000_000])
def test_sampled_profile_equals_the_in_memory_fit(tmp_path: Path, batch_rows: int) -> None:
    frame = _frame()
    path = tmp_path / "reference.parquet"
    frame.to_parquet(path)
    expected = fit_reference(frame, numeric=list(frame.columns), max_reference_values=500)
    with DuckDBRunner(batch_rows=batch_rows) as runner:
        fitted = fit_reference_in_engine(
            runner, file_relation(runner, str(path)), numeric=list(frame.columns),
            max_reference_values=500,
        )  # fmt: skip
    for name, column in expected.columns.items():
        got = fitted.columns[name]
        assert got.sampled, name
        for field in ("sorted_values", "edges", "bin_counts"):
            assert (getattr(column, field) == getattr(got, field)).all(), (name, field)


def test_counts_below_decides_only_where_the_known_ranks_do() -> None:
    values = np.sort(np.round(np.random.default_rng(5).normal(0, 1, 200), 1))
    ranks = np.array([0, 10, 11, 50, 120, 121, 199])
    starts = np.searchsorted(values, values[ranks], side="left")
    edges = np.array([values[0] - 1, values[10], (values[10] + values[11]) / 2, values[50],
                      (values[50] + values[120]) / 2, values[199] + 1])  # fmt: skip
    got = _counts_below(ranks, values[ranks], starts, values.size, edges)
    truth = np.searchsorted(values, edges, side="left")
    decided = got >= 0
    assert (got[decided] == truth[decided]).all()
    # between ranks 50 and 120 the count is unknown (the engine counts it then)
    assert decided.tolist() == [True, True, True, True, edges[4] in values[ranks], True]
