"""The KS merge of two sorted samples: a numba kernel when numba is importable, else numpy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _merge_numpy(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """Fallback of the merge kernel (stable argsort of the concatenation, ~3x slower).

    Returns ``(i, j, w)``: the counts of ``a`` and ``b`` values <= x at the x maximising
    |F_a(x) - F_b(x)|, and the Wasserstein-1 distance (meaningful for finite input only).
    """
    n1, n2 = a.size, b.size
    both = np.concatenate([a, b])
    order = np.argsort(both, kind="stable")
    values = both[order]
    j = np.cumsum(order >= n1)
    i = np.arange(1, n1 + n2 + 1) - j
    diff = np.abs(i * n2 - j * n1)
    group_end = np.empty(n1 + n2, dtype=bool)  # ECDFs are only complete after a tie group
    group_end[-1] = True
    np.not_equal(values[1:], values[:-1], out=group_end[:-1])
    at_max = np.flatnonzero(group_end & (diff == diff[group_end].max()))
    # Exact ties of |i*n2 - j*n1| can round differently; keep scipy's float maximum.
    k = at_max[np.argmax(np.abs(i[at_max] / n1 - j[at_max] / n2))]
    with np.errstate(invalid="ignore"):
        w = float(np.dot(diff[:-1].astype(np.float64), np.diff(values))) / (n1 * n2)
    return int(i[k]), int(j[k]), w


_KERNEL: Callable[[np.ndarray, np.ndarray], tuple[int, int, float]] | None = None
_record_jit: Callable[..., tuple[int, float, int, int, float]] | None = None


def _merge_stats(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """One merge pass over two sorted arrays giving the KS maximiser and Wasserstein-1.

    Uses a numba kernel when numba is installed (compiled lazily and cached on disk, so
    importing this module stays cheap), otherwise the numpy fallback.
    """
    global _KERNEL
    if _KERNEL is None:
        _KERNEL = _compile_kernel()
    return _KERNEL(a, b)


def _compile_kernel() -> Callable[[np.ndarray, np.ndarray], tuple[int, int, float]]:
    global _record_jit
    try:
        import numba
    except ImportError:
        return _merge_numpy
    _record_jit = numba.njit(inline="always", cache=True)(_record)
    return numba.njit(cache=True, nogil=True)(_merge_loops)


def _record(
    x: float, x_prev: float, diff: int, i: int, j: int, n1: int, n2: int,
    best: int, best_f: float, bi: int, bj: int, w: float,
) -> tuple[int, float, int, int, float]:  # fmt: skip
    """Kernel step before consuming ``x``: add the previous CDF gap to W, update the KS max.

    A D candidate is only taken once a tie group is complete (x changed), as scipy's
    side="right" CDFs do; exact ties of |i*n2 - j*n1| can round differently as floats, so
    those keep scipy's float maximum.
    """
    ad = abs(diff)
    w += ad * (x - x_prev)
    if ad >= best and x != x_prev:
        f = abs(i / n1 - j / n2)
        if ad > best or f > best_f:
            best, best_f, bi, bj = ad, f, i, j
    return best, best_f, bi, bj, w


def _merge_loops(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:  # pragma: no cover
    """numba source of the merge kernel (branch-light main loop, then the two tails)."""
    record = _record_jit
    n1, n2 = a.size, b.size
    i = j = diff = best = bi = bj = 0
    best_f = w = 0.0
    x_prev = min(a[0], b[0])
    while i < n1 and j < n2:
        take_a = a[i] <= b[j]
        x = a[i] if take_a else b[j]
        best, best_f, bi, bj, w = record(x, x_prev, diff, i, j, n1, n2, best, best_f, bi, bj, w)
        i += take_a
        j += not take_a
        diff += n2 if take_a else -n1
        x_prev = x
    while i < n1:
        x = a[i]
        best, best_f, bi, bj, w = record(x, x_prev, diff, i, j, n1, n2, best, best_f, bi, bj, w)
        i += 1
        diff += n2
        x_prev = x
    while j < n2:
        x = b[j]
        best, best_f, bi, bj, w = record(x, x_prev, diff, i, j, n1, n2, best, best_f, bi, bj, w)
        j += 1
        diff -= n1
        x_prev = x
    return bi, bj, w / (n1 * n2)
