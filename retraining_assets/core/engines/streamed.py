"""The KS maximiser, Wasserstein integral and plot quantiles from a current column the engine
sorts out of core and streams in batches (DuckDB): the faster alternative to the window
query over the union, with the same results.

KS: the maximum of |F_ref - F_cur| over the union's tie-group ends is attained at a
reference value's group end ``(#ref <= r, #cur <= r)`` or just before it ``(#ref < r,
#cur < r)`` (between two reference values F_ref is constant and F_cur monotone, so
|i*n2 - j*n1| is largest at an end, strictly so), or at ``(n1, n2)``. Only the current
column's counts at the reference's distinct values are needed; the maximiser is then chosen
as the merge kernel chooses it (largest |i*n2 - j*n1|, then the largest float gap), so D is
identical. Wasserstein: each batch is merged with the reference values up to its last value
and the integral of |i*n2f - j*n1f| accumulated, carrying the state across batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np
import pyarrow as pa

from retraining_assets.core.drift.columns import NumericProfile, _inf_counts
from retraining_assets.core.engines.dialect import Dialect


class StreamingRunner(Protocol):
    dialect: Dialect

    def batches(self, sql: str) -> Iterator[pa.RecordBatch]: ...


class _Integral:
    """Wasserstein-1 (times n1f*n2f) of the finite values, merged batch by batch."""

    def __init__(self, ref_finite: np.ndarray, n2f: int) -> None:
        self.ref, self.n1f, self.n2f = ref_finite, ref_finite.size, n2f
        self.position = 0  # reference values consumed
        self.i = self.j = 0
        self.last: float | None = None
        self.total = 0.0

    def add(self, current: np.ndarray) -> None:
        end = int(np.searchsorted(self.ref, current[-1], side="right")) if current.size else None
        self._merge(self.ref[self.position : end], current)
        if end is not None:
            self.position = end

    def finish(self) -> float:
        self._merge(self.ref[self.position :], np.empty(0))
        return self.total

    def _merge(self, ref: np.ndarray, current: np.ndarray) -> None:
        if ref.size + current.size == 0:
            return
        values = np.concatenate([ref, current])
        is_current = np.concatenate([np.zeros(ref.size, bool), np.ones(current.size, bool)])
        order = np.argsort(values, kind="stable")
        values, is_current = values[order], is_current[order]
        j = self.j + np.cumsum(is_current, dtype=np.int64)
        i = self.i + np.cumsum(~is_current, dtype=np.int64)
        if self.last is not None:
            gap = abs(self.i * self.n2f - self.j * self.n1f)
            self.total += float(gap) * (values[0] - self.last)
        gaps = np.abs(i[:-1] * self.n2f - j[:-1] * self.n1f).astype(np.float64)
        self.total += float(np.dot(gaps, np.diff(values)))
        self.i, self.j, self.last = int(i[-1]), int(j[-1]), float(values[-1])


def streamed_merge(
    runner: StreamingRunner,
    sql: str,
    prof: NumericProfile,
    n2: int,
    n2_finite: int,
    ranks: list[int],
) -> tuple[int, int, float | None, list[float | None]]:
    """``(i, j, w_sum, values at the finite ranks)`` for the current column that ``sql``
    returns sorted (its ``n2`` non-null values, ``n2_finite`` of them finite)."""
    ref = prof.sorted_values
    n1 = ref.size
    ref_neg, ref_pos = _inf_counts(ref)
    distinct = np.unique(ref)
    at_most = np.zeros(distinct.size, dtype=np.int64)  # current values <= each distinct r
    below = np.zeros(distinct.size, dtype=np.int64)  # current values < r
    beyond = np.zeros(distinct.size + 1, dtype=np.int64)  # whole batches below r, as a diff
    integral = _Integral(ref[ref_neg : n1 - ref_pos], n2_finite)
    picked: list[float | None] = [None] * len(ranks)
    finite_seen = 0
    for batch in runner.batches(sql):
        values = batch.column(0).to_numpy()
        if values.size == 0:
            continue
        lo = int(np.searchsorted(distinct, values[0], side="left"))
        hi = int(np.searchsorted(distinct, values[-1], side="right"))
        at_most[lo:hi] += np.searchsorted(values, distinct[lo:hi], side="right")
        below[lo:hi] += np.searchsorted(values, distinct[lo:hi], side="left")
        beyond[hi] += values.size
        finite = values[np.isfinite(values)]
        for k, rank in enumerate(ranks):
            if finite_seen <= rank < finite_seen + finite.size:
                picked[k] = float(finite[rank - finite_seen])
        finite_seen += finite.size
        if finite.size:
            integral.add(finite)
    offset = np.cumsum(beyond)[:-1]
    i = np.concatenate([np.searchsorted(ref, distinct, side="right"),
                        np.searchsorted(ref, distinct, side="left"), [n1]])  # fmt: skip
    j = np.concatenate([at_most + offset, below + offset, [n2]])
    gap = np.abs(i.astype(np.int64) * n2 - j.astype(np.int64) * n1)
    best = np.flatnonzero(gap == gap.max())
    k = best[np.argmax(np.abs(i[best] / n1 - j[best] / n2))]
    w = integral.finish() if integral.n1f and finite_seen else None
    return int(i[k]), int(j[k]), w, picked
