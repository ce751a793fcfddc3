"""The KS maximiser, Wasserstein integral and histogram counts from a current column the
engine sorts out of core and streams in batches (DuckDB): the faster alternative to the
window query over the union, with the same results.

The in-memory merge kernel (``core.drift.kernels``) walks the union of the two sorted samples
once; here the same walk is resumed batch by batch (its state carried between batches, the
reference consumed up to each batch's values), so the maximiser ``(i, j)`` is the one the
memory engine picks and D is identical. The Wasserstein sum is accumulated in the same walk
over the finite values only (what the memory engine's second, finite-only merge adds). The
PSI and plot histograms are counted on the sorted batches with ``np.searchsorted`` (the same
``<`` / ``<=`` conventions as the memory engine), so no per-edge aggregate scan is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa

from retraining_assets.core.drift.columns import NumericProfile, _inf_counts
from retraining_assets.core.engines.dialect import Dialect


class StreamingRunner(Protocol):
    dialect: Dialect

    def batches(self, sql: str) -> Iterator[pa.RecordBatch]: ...


def _walk(
    a: np.ndarray, b: np.ndarray, n2: int, ref_neg: int, cur_neg: int, n1f: int, n2f: int,
    ints: np.ndarray, floats: np.ndarray, final: bool,
) -> None:  # fmt: skip  # pragma: no cover (numba source; the fallback runs it as Python)
    """One step of the merge walk: consume ``b`` (the next sorted current batch) and the
    reference values ``<=`` each of its values; with ``final`` the rest of the reference.
    ``ints`` = (i, j, i*n2 - j*n1, best, bi, bj, started), ``floats`` = (best_f, w, x_prev),
    updated in place. Each step is ``kernels._record`` (a D candidate once a tie group is
    complete; exact ties of |i*n2 - j*n1| keep the float maximum) plus the finite-only
    Wasserstein term."""
    n1 = a.size
    i, j, diff, best, bi, bj, started = (
        ints[0],
        ints[1],
        ints[2],
        ints[3],
        ints[4],
        ints[5],
        ints[6],
    )
    best_f, w, x_prev = floats[0], floats[1], floats[2]
    if started == 0:
        x_prev = min(a[0], b[0]) if b.size else a[0]
        started = 1
    k, nb = 0, b.size
    while k < nb or (final and i < n1):
        take_a = i < n1 and (k >= nb or a[i] <= b[k])
        x = a[i] if take_a else b[k]
        ad = abs(diff)
        if ad >= best and x != x_prev:
            f = abs(i / n1 - j / n2)
            if ad > best or f > best_f:
                best, best_f, bi, bj = ad, f, i, j
        if x_prev > -np.inf and x < np.inf:  # both finite: the finite-only merge's term
            w += abs((i - ref_neg) * n2f - (j - cur_neg) * n1f) * (x - x_prev)
        if take_a:
            i += 1
            diff += n2
        else:
            j += 1
            k += 1
            diff -= n1
        x_prev = x
    ints[0], ints[1], ints[2], ints[3], ints[4], ints[5], ints[6] = (
        i,
        j,
        diff,
        best,
        bi,
        bj,
        started,
    )
    floats[0], floats[1], floats[2] = best_f, w, x_prev


_KERNEL: Callable[..., None] | None = None


def _kernel() -> Callable[..., None]:
    global _KERNEL
    if _KERNEL is None:
        try:
            import numba
        except ImportError:  # correct but slow; numba is a dependency
            _KERNEL = _walk
        else:
            _KERNEL = numba.njit(cache=True, nogil=True)(_walk)
    return _KERNEL


@dataclass
class StreamedStatistics:
    i: int
    j: int
    w_sum: float | None  # Wasserstein-1 times n1f * n2f; None without finite values
    below_edges: list[int]  # non-null current values < each PSI edge
    plot_below: list[int]  # finite current values < each plot edge but the last
    plot_at_most: int  # finite current values <= the last plot edge


def streamed_merge(
    runner: StreamingRunner,
    sql: str,
    prof: NumericProfile,
    n2: int,
    cur_neg: int,
    n2_finite: int,
    plot_edges: np.ndarray,
) -> StreamedStatistics:
    """The statistics of the current column that ``sql`` returns sorted (its ``n2``
    non-null values, ``cur_neg`` of them -inf and ``n2_finite`` finite)."""
    ref = np.ascontiguousarray(prof.sorted_values, dtype=np.float64)
    ref_neg, ref_pos = _inf_counts(ref)
    n1f = ref.size - ref_neg - ref_pos
    ints = np.zeros(7, dtype=np.int64)
    floats = np.zeros(3, dtype=np.float64)
    below = np.zeros(prof.edges.size, dtype=np.int64)
    plot = np.zeros(plot_edges.size, dtype=np.int64)
    kernel = _kernel()
    for batch in runner.batches(sql):
        values = np.ascontiguousarray(batch.column(0).to_numpy(), dtype=np.float64)
        if values.size == 0:
            continue
        kernel(ref, values, n2, ref_neg, cur_neg, n1f, n2_finite, ints, floats, False)
        below += np.searchsorted(values, prof.edges, side="left")
        finite = values[  # sorted: the infinities sit at the ends
            np.searchsorted(values, -np.inf, side="right") : np.searchsorted(values, np.inf)
        ]
        plot[:-1] += np.searchsorted(finite, plot_edges[:-1], side="left")
        plot[-1] += np.searchsorted(finite, plot_edges[-1], side="right")
    kernel(ref, np.empty(0), n2, ref_neg, cur_neg, n1f, n2_finite, ints, floats, True)
    w = float(floats[1]) if n1f and n2_finite else None
    return StreamedStatistics(
        int(ints[4]), int(ints[5]), w, below.tolist(), plot[:-1].tolist(), int(plot[-1])
    )
