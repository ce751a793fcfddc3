"""Comparing a frame with a profile on bad input: missing, empty, all-null, constant, unseen,
infinite and mixed values each get a clear error or a named warning."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from retraining_assets.core.drift import DriftInputError, detect_drift, fit_reference
from retraining_assets_tests.core.drift.frames import frames


def test_missing_column_raises_naming_it() -> None:
    ref, cur = frames()
    with pytest.raises(DriftInputError, match="color"):
        detect_drift(ref, cur.drop(columns=["color"]))


def test_empty_current_raises() -> None:
    ref, cur = frames()
    with pytest.raises(DriftInputError, match="empty"):
        detect_drift(ref, cur.iloc[:0])


def test_all_null_column_is_untestable_and_null_rate_changes() -> None:
    ref, cur = frames()
    cur["stable"] = np.nan
    report = detect_drift(ref, cur)
    entry = report.features["stable"]
    assert entry["testable"] is False and "'stable'" in entry["reason"]
    assert entry["drifted"] is False and entry["psi"] is None
    assert report.null_rates["stable"]["changed"] is True
    assert any("'stable'" in w for w in report.warnings)
    ref["stable"] = np.nan
    assert "reference" in detect_drift(ref, cur).features["stable"]["reason"]


def test_constant_column_uses_pooled_std() -> None:
    ref = pd.DataFrame({"k": np.full(500, 2.0)})
    same = detect_drift(ref, pd.DataFrame({"k": np.full(400, 2.0)}))
    assert same.features["k"]["wasserstein"] == 0.0 and not same.dataset_drift
    moved = detect_drift(ref, pd.DataFrame({"k": np.full(400, 3.0)}))
    entry = moved.features["k"]
    assert entry["ks_statistic"] == 1.0 and math.isfinite(entry["wasserstein"])
    assert entry["drifted"] is True
    assert any("constant" in w and "'k'" in w for w in moved.warnings)


def test_new_category_is_unseen_drift() -> None:
    ref = pd.DataFrame({"c": ["a", "b"] * 100})
    cur = pd.DataFrame({"c": ["a", "b"] * 40 + ["zzz"] * 20})
    report = detect_drift(ref, cur)
    assert report.unseen["c"]["share"] == pytest.approx(0.2)
    assert report.unseen["c"]["categories"] == {"zzz": 20}
    assert "unseen_share" in report.features["c"]["exceeded"]
    assert report.features["c"]["drifted"] is True


def test_infinite_values_are_rank_values_and_excluded_from_moments() -> None:
    rng = np.random.default_rng(12)
    ref = rng.normal(size=300)
    cur = np.r_[rng.normal(size=280), [np.inf] * 15, [-np.inf] * 5]
    entry = detect_drift(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur})).features["x"]
    assert entry["ks_statistic"] == stats.ks_2samp(ref, cur).statistic
    assert entry["inf_current"] == 20
    finite = cur[np.isfinite(cur)]
    assert entry["wasserstein_raw"] == pytest.approx(stats.wasserstein_distance(ref, finite))
    assert entry["histogram"]["psi_current"][-1] >= 15  # +inf counted in the top bin


def test_mixed_object_column_is_compared_as_strings_with_warning() -> None:
    ref = pd.DataFrame({"m": pd.Series([1, "a", 2.5, None] * 50, dtype=object)})
    cur = pd.DataFrame({"m": pd.Series([1, "a", 2.5, "a"] * 50, dtype=object)})
    report = detect_drift(ref, cur)
    assert report.features["m"]["testable"] is True
    assert any("'m'" in w and "mixes value types" in w for w in report.warnings)


def test_non_numeric_current_values_make_column_untestable() -> None:
    ref = pd.DataFrame({"x": np.arange(50.0)})
    cur = pd.DataFrame({"x": ["1", "oops"] * 25})
    entry = detect_drift(ref, cur).features["x"]
    assert entry["testable"] is False and "'x'" in entry["reason"]


def test_explicit_kinds_and_invalid_schema() -> None:
    ref, cur = frames()
    report = detect_drift(ref, cur, numeric=["scale"], categorical=["count"])
    assert {k: v["kind"] for k, v in report.features.items()} == {
        "scale": "numeric",
        "count": "categorical",
    }
    with pytest.raises(DriftInputError, match="both"):
        fit_reference(ref, numeric=["count"], categorical=["count"])


def test_month_without_labels_skips_target_drift_with_warning() -> None:
    ref, cur = frames()
    profile = fit_reference(ref, target="flag")
    report = profile.compare(cur.drop(columns=["flag"]))
    assert report.target_drift is None
    assert any("target drift skipped" in w for w in report.warnings)
    with pytest.raises(DriftInputError, match="flag"):
        profile.compare(cur.drop(columns=["flag"]), target="flag")
