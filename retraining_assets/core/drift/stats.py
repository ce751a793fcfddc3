"""The two-sample statistics behind the verdict: PSI, Jensen-Shannon, Benjamini-Hochberg and a
KS test on sorted samples (D as ``scipy.stats.ks_2samp``, p-values as its ``method="auto"``)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import special, stats

from retraining_assets.core.drift.kernels import _merge_stats

PSI_EPSILON = 1e-4  # proportions are clipped to [eps, 1] before the PSI log ratio
EXACT_KS_MAX_N = 10_000  # scipy's `auto` switch between exact and asymptotic p-values


def population_stability_index(
    reference_counts: np.ndarray, current_counts: np.ndarray, epsilon: float = PSI_EPSILON
) -> float:
    """PSI = sum((q - p) * ln(q / p)) over bins, proportions clipped to [epsilon, 1].

    Clipping (without renormalising) keeps empty bins finite; epsilon=1e-4 caps one empty bin's
    contribution at about ``q * ln(q / 1e-4)``.
    """
    p = np.clip(_proportions(reference_counts), epsilon, 1.0)
    q = np.clip(_proportions(current_counts), epsilon, 1.0)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon_distance(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (square root of the divergence) in base 2, so within [0, 1]."""
    p = _proportions(reference_counts)
    q = _proportions(current_counts)
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        nz = x > 0  # 0 * log(0) = 0; m > 0 wherever x > 0
        return float(np.sum(x[nz] * np.log2(x[nz] / m[nz])))

    return float(np.sqrt(max((kl(p) + kl(q)) / 2, 0.0)))


def benjamini_hochberg(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted q-values (step-up, monotone, capped at 1), input order."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(scaled[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


def ks_2samp_sorted(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample KS (D, p) for two *sorted* non-empty float arrays (±inf allowed).

    D equals ``scipy.stats.ks_2samp`` exactly; the p-value is scipy's ``method="auto"``:
    exact (scipy's own routine) when ``max(n1, n2) <= 10_000``, else ``kstwo.sf(D, round(en))``
    with ``en = n1*n2/(n1+n2)`` (scipy's asymptotic formula).
    """
    i, j, _ = _merge_stats(reference, current)
    return _ks_test(_ks_d(i, j, reference.size, current.size), reference, current)


def _proportions(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts / total if total > 0 else counts


def _ks_d(i: int, j: int, n1: int, n2: int) -> float:
    # Same floating-point expression scipy evaluates, at the maximising merge position.
    return float(abs(i / n1 - j / n2))


def _ks_test(d: float, reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """(D, p) as scipy's ``method="auto"`` reports them for our merge-kernel D."""
    n1, n2 = reference.size, current.size
    if max(n1, n2) <= EXACT_KS_MAX_N:
        # scipy's exact routine also snaps D to h/lcm(n1, n2); small inputs, so call it.
        with warnings.catch_warnings():  # scipy warns when it falls back to asymp itself
            warnings.simplefilter("ignore", RuntimeWarning)
            result = stats.ks_2samp(reference, current, method="auto")
        return float(result.statistic), float(result.pvalue)
    return d, _ks_asymptotic_pvalue(d, n1, n2)


def _ks_asymptotic_pvalue(d: float, n1: int, n2: int) -> float:
    """scipy's asymptotic two-sample p-value: needs only D and the sizes (so an engine that
    computed D where the data lives gets the same p-value)."""
    en = n1 * n2 / (n1 + n2)
    return float(np.clip(_kstwo_sf(d, int(np.round(en))), 0.0, 1.0))


def _kstwo_sf(d: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(d, n)`` without its O(n) slow path, within 1e-6 of scipy.

    For n > 140 and n*d^2 >= 2.2 scipy evaluates ``2 * special.smirnov(n, d)`` term by term
    (~0.7 s at n = 5e5). There: if n*d^2 >= 7.5, scipy's value is below 2*exp(-15) = 6.1e-7
    (Massart's bound), as is the Kolmogorov limit returned instead; otherwise the same exact
    Birnbaum-Tingey sum is evaluated vectorised in log space (agrees to ~1e-12).
    """
    z2 = n * d * d
    if n <= 140 or z2 < 2.2 or not 1 < n * d < n - 1:
        return float(stats.kstwo.sf(d, n))
    if z2 >= 7.5:
        return float(special.kolmogorov(math.sqrt(z2)))
    return min(2.0 * _smirnov_sf(n, d), 1.0)


def _smirnov_sf(n: int, d: float) -> float:
    """One-sided P(D+_n >= d) by the Birnbaum-Tingey sum (all terms positive: no cancellation)."""
    j = np.arange(0, math.floor(n * (1 - d)) + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_terms = (
            special.gammaln(n + 1) - special.gammaln(j + 1) - special.gammaln(n - j + 1)
            + (j - 1) * np.log(d + j / n) + (n - j) * np.log1p(-d - j / n)
        )  # fmt: skip
    top = log_terms.max()
    return float(d * math.exp(top) * np.sum(np.exp(log_terms - top)))
