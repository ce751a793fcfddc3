"""The drift statistics against scipy: KS (and its numba kernels), Wasserstein, PSI,
Jensen-Shannon, chi-square and Benjamini-Hochberg."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from retraining_assets.core.drift import (
    benjamini_hochberg,
    detect_drift,
    fit_reference,
    jensen_shannon_distance,
    kernels,
    ks_2samp_sorted,
    population_stability_index,
)
from retraining_assets.core.drift import stats as drift_stats


def _random_sample(rng: np.random.Generator, n: int, kind: int) -> np.ndarray:
    if kind == 0:
        return rng.normal(rng.normal(), 1 + rng.random(), n)
    if kind == 1:  # heavy ties
        return rng.integers(0, 4, n).astype(float)
    if kind == 2:  # constant
        return np.full(n, 3.0)
    return np.round(rng.exponential(2, n), 1)  # moderate ties


def _cases(count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    sizes = [1, 2, 3, 5, 8, 20, 57, 200, 1000]
    out = []
    for _ in range(count):
        n1, n2 = rng.choice(sizes, 2)
        k1 = int(rng.integers(0, 4))
        k2 = k1 if rng.random() < 0.7 else int(rng.integers(0, 4))
        out.append((_random_sample(rng, n1, k1), _random_sample(rng, n2, k2)))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_matches_scipy_auto_on_random_small_cases(seed: int) -> None:
    for a, b in _cases(120, seed):
        d, p = ks_2samp_sorted(np.sort(a), np.sort(b))
        expected = stats.ks_2samp(a, b)
        assert d == expected.statistic
        assert abs(p - expected.pvalue) <= 1e-6


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy's asymp formula at n = 1
def test_merge_kernel_d_equals_scipy_raw_statistic_and_wasserstein() -> None:
    # method="asymp" leaves D unrounded, which is what the kernel itself must reproduce.
    for a, b in _cases(200, 7):
        a_sorted, b_sorted = np.sort(a), np.sort(b)
        raw_d = stats.ks_2samp(a, b, method="asymp").statistic
        for kernel in (kernels._merge_stats, kernels._merge_numpy):
            i, j, w = kernel(a_sorted, b_sorted)
            assert drift_stats._ks_d(i, j, a.size, b.size) == raw_d
            assert w == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-12)


def test_ks_asymptotic_path_matches_scipy_for_large_samples() -> None:
    rng = np.random.default_rng(3)
    for shift, ties in [(0.0, False), (0.03, False), (0.05, True), (0.3, False)]:
        a = rng.normal(0, 1, 12_000)
        b = rng.normal(shift, 1, 15_000)
        if ties:
            a, b = np.round(a, 1), np.round(b, 1)
        d, p = ks_2samp_sorted(np.sort(a), np.sort(b))
        expected = stats.ks_2samp(a, b)
        assert d == expected.statistic
        assert abs(p - expected.pvalue) <= 1e-6


@pytest.mark.parametrize("n", [141, 2_000, 20_000])
def test_kstwo_sf_fast_path_within_1e6_of_scipy(n: int) -> None:
    for z2 in [0.5, 2.19, 2.2, 3.0, 5.0, 7.49, 7.5, 20.0, 400.0]:
        d = math.sqrt(z2 / n)
        assert abs(drift_stats._kstwo_sf(d, n) - stats.kstwo.sf(d, n)) <= 1e-6
    assert abs(drift_stats._kstwo_sf(0.6, n) - stats.kstwo.sf(0.6, n)) <= 1e-6


def test_psi_hand_computed() -> None:
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert population_stability_index(np.array([50, 50]), np.array([25, 75])) == pytest.approx(
        expected
    )
    # An empty reference bin is clipped to 1e-4 (not renormalised).
    clipped = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert population_stability_index(np.array([10, 0]), np.array([5, 5])) == pytest.approx(clipped)
    assert population_stability_index(np.array([3, 3, 4]), np.array([30, 30, 40])) == 0.0


def test_numeric_psi_uses_reference_deciles() -> None:
    reference = pd.DataFrame({"x": np.arange(1000, dtype=float)})
    current = pd.DataFrame({"x": np.full(200, 5.0)})  # everything in the first decile
    entry = detect_drift(reference, current).features["x"]
    p, q = np.full(10, 0.1), np.clip(np.r_[1.0, np.zeros(9)], 1e-4, 1)
    assert entry["psi"] == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    assert entry["histogram"]["psi_current"] == [200] + [0] * 9
    edges = fit_reference(reference).columns["x"].edges
    np.testing.assert_array_equal(edges, np.quantile(np.arange(1000.0), np.arange(1, 10) / 10))


def test_jensen_shannon_matches_scipy_and_bounds() -> None:
    rng = np.random.default_rng(4)
    for _ in range(50):
        p, q = rng.integers(0, 20, 6), rng.integers(0, 20, 6)
        p[0] += 1
        q[0] += 1
        assert jensen_shannon_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2))
    assert jensen_shannon_distance(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    assert jensen_shannon_distance(np.array([2, 3]), np.array([4, 6])) == pytest.approx(0.0)


def test_wasserstein_normalised_by_reference_std() -> None:
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(0, 2, 3000), rng.normal(1, 2, 2000)
    entry = detect_drift(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur})).features["x"]
    raw = stats.wasserstein_distance(ref, cur)
    assert entry["wasserstein_raw"] == pytest.approx(raw, rel=1e-9)
    assert entry["wasserstein"] == pytest.approx(raw / ref.std(), rel=1e-9)


# ----------------------------------------------------------------------------- chi2, BH


def test_chi_square_false_positive_rate_is_nominal() -> None:
    rng = np.random.default_rng(6)
    labels, weights = np.array(["a", "b", "c", "d"]), [0.5, 0.3, 0.15, 0.05]
    rejections = 0
    trials = 400
    for _ in range(trials):
        ref = pd.DataFrame({"c": rng.choice(labels, 300, p=weights)})
        cur = pd.DataFrame({"c": rng.choice(labels, 200, p=weights)})
        rejections += detect_drift(ref, cur).features["c"]["chi2_pvalue"] < 0.05
    # Binomial(400, 0.05): mean 20, sd 4.4; +-3.5 sd. A goodness-of-fit test against the
    # reference proportions would reject far more often (the reference is itself a sample).
    assert 5 <= rejections <= 36


def test_categorical_statistics_match_scipy_contingency() -> None:
    ref = pd.DataFrame({"c": ["a"] * 60 + ["b"] * 30 + ["c"] * 10})
    cur = pd.DataFrame({"c": ["a"] * 30 + ["b"] * 50 + ["c"] * 20})
    entry = detect_drift(ref, cur).features["c"]
    table = np.array([[60, 30, 10], [30, 50, 20]])
    assert entry["chi2_pvalue"] == pytest.approx(stats.chi2_contingency(table).pvalue)
    assert entry["cramers_v"] == pytest.approx(stats.contingency.association(table))
    assert entry["linf"] == pytest.approx(0.3)
    assert entry["ks_statistic"] is None and entry["wasserstein"] is None


def test_benjamini_hochberg_hand_computed() -> None:
    q = benjamini_hochberg([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(q, [0.02, 0.04, 0.04, 0.02])
    p = np.random.default_rng(8).random(40) ** 3
    np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p))
    assert benjamini_hochberg([]).size == 0
