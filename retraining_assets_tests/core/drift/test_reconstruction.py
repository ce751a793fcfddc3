"""PCA data-reconstruction drift (NannyML's), against sklearn's PCA and on known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from retraining_assets.core.drift import multivariate_drift
from retraining_assets.core.drift.reconstruction import _errors, reconstruction_drift

NUMERIC = np.zeros(3, dtype=bool)


def block(n: int, rho: float, seed: int) -> np.ndarray:
    """Three standard normal columns, the first two correlated ``rho``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = rho * x + math.sqrt(1 - rho**2) * rng.normal(size=n)
    return np.column_stack([x, y, rng.normal(size=n)])


def test_error_equals_sklearn_standard_scaler_and_pca() -> None:
    x = block(2000, 0.9, seed=1)
    other = block(500, 0.0, seed=2)
    ours = _errors(x, other, NUMERIC, 0.65)
    scaler = StandardScaler().fit(x)
    pca = PCA(n_components=0.65, svd_solver="full").fit(scaler.transform(x))
    z = scaler.transform(other)
    expected = np.linalg.norm(z - pca.inverse_transform(pca.transform(z)), axis=1)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-9)


def test_flags_a_correlation_break_and_not_a_second_sample() -> None:
    reference = block(20_000, 0.9, seed=1)
    same = reconstruction_drift(reference, block(5000, 0.9, seed=2), NUMERIC)
    assert not same.drifted and same.lower <= same.error <= same.upper
    broken = reconstruction_drift(reference, block(5000, 0.0, seed=3), NUMERIC)
    assert broken.drifted and broken.error > broken.upper and broken.skipped is None


def test_categories_and_nulls_are_encoded_not_dropped() -> None:
    rng = np.random.default_rng(4)
    n = 5000
    kind = rng.choice(["a", "b", "c"], n)
    amount = np.where(kind == "a", 1.0, -1.0) + 0.3 * rng.normal(size=n)
    reference = pd.DataFrame({"amount": amount, "kind": kind})
    reference.loc[::20, "amount"] = np.nan
    current = reference.copy()
    current["kind"] = rng.permutation(current["kind"].to_numpy())  # same mix, link broken
    result = multivariate_drift(reference, current).reconstruction
    assert result.drifted and result.skipped is None


def test_too_few_reference_rows_skips_with_the_reason() -> None:
    result = reconstruction_drift(block(30, 0.5, 1), block(100, 0.5, 2), NUMERIC)
    assert not result.drifted and math.isnan(result.error)
    assert result.skipped.startswith("too few rows: reference 30")
