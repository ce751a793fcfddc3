"""The drift verdict: which columns drift, the dataset share, importances, the PSI warning
tier, and the prediction and target drift keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retraining_assets.core.drift import DriftThresholds, detect_drift
from retraining_assets_tests.core.drift.frames import frames


def test_detect_drift_flags_the_drifted_column_only() -> None:
    ref, cur = frames()
    report = detect_drift(ref, cur)
    assert report.drifted_features == ["scale"]
    assert report.dataset_drift is True
    assert "wasserstein" in report.features["scale"]["exceeded"]
    assert report.features["count"]["kind"] == "numeric"  # numeric dtype, low cardinality
    assert report.features["flag"]["kind"] == "categorical"
    assert report.features["color"]["kind"] == "categorical"
    assert not detect_drift(ref, ref).dataset_drift


def test_effect_without_significance_is_not_drift() -> None:
    ref = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    cur = pd.DataFrame({"x": [0.5, 1.5, 2.5]})  # big PSI/W on 3 points, nothing significant
    entry = detect_drift(ref, cur).features["x"]
    assert entry["exceeded"] and entry["q_value"] >= 0.05
    assert entry["drifted"] is False


def test_dataset_share_and_importances() -> None:
    ref, cur = frames()
    half = DriftThresholds(dataset_drift_share=0.5)
    assert detect_drift(ref, cur, thresholds=half).dataset_drift is False
    weighted = DriftThresholds(
        dataset_drift_share=0.5, feature_importances={"scale": 3, "count": 1}
    )
    report = detect_drift(ref, cur, thresholds=weighted)
    assert report.drift_share == pytest.approx(0.75)
    assert report.dataset_drift is True


def test_psi_warning_tier_is_reported_not_drift() -> None:
    rng = np.random.default_rng(10)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 20_000)})
    cur = pd.DataFrame({"x": rng.normal(0, 1, 20_000)})
    thresholds = DriftThresholds(psi_warning=0.0005, psi_alert=0.5, wasserstein=5, jensen_shannon=5)
    entry = detect_drift(ref, cur, thresholds=thresholds).features["x"]
    assert entry["psi_warning"] is True and entry["drifted"] is False


def test_prediction_and_target_drift_have_their_own_keys() -> None:
    ref, cur = frames()
    rng = np.random.default_rng(11)
    report = detect_drift(
        ref,
        cur,
        reference_scores=rng.beta(2, 5, 3000),
        current_scores=rng.beta(5, 2, 3000),
        reference_target=pd.Series(rng.integers(0, 2, 3000)),
        current_target=pd.Series(rng.integers(0, 2, 3000)),
    )
    assert report.prediction_drift["drifted"] is True
    assert report.prediction_drift["kind"] == "numeric"
    assert report.target_drift["kind"] == "categorical"  # integer labels with 2 classes
    assert report.target_drift["drifted"] is False
    assert set(report.features) == set(ref.columns)


def test_target_column_name_is_excluded_from_features() -> None:
    ref, cur = frames()
    report = detect_drift(ref, cur, target_column="flag")
    assert "flag" not in report.features and report.target_drift is not None
