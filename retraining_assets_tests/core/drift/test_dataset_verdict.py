"""The dataset verdict: one function, the modes a user chooses with RETRAIN_DRIFT_VERDICT."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retraining_assets.core.drift import DriftThresholds, detect_drift, fit_reference
from retraining_assets.core.drift.calibration import calibrate
from retraining_assets.core.drift.dataset_verdict import (
    EstimateGate,
    VerdictError,
    dataset_alarm,
    parse_mode,
)
from retraining_assets.core.drift.multivariate import MultivariateDrift
from retraining_assets.core.triggers import RetrainPolicy
from retraining_assets_tests.core.drift.frames import frames as _frames


def shifted(n: int = 3000, seed: int = 1, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "used": rng.normal(0, 1, n),
        "ignored": rng.normal(shift, 1, n),
        "other": rng.normal(0, 1, n),
    })  # fmt: skip


@pytest.mark.parametrize(
    "thresholds", [DriftThresholds(), DriftThresholds(dataset_drift_share=0.5)]
)
def test_univariate_is_exactly_the_reports_dataset_drift(thresholds: DriftThresholds) -> None:
    ref, cur = _frames()
    for current in (ref, cur, _frames(seed=3)[0]):
        report = detect_drift(ref, current, thresholds=thresholds)
        alarm = dataset_alarm(report)
        assert alarm.alarm is report.dataset_drift
        assert alarm.score == report.drift_share
        assert alarm.mode == "univariate" and not alarm.skipped


def test_a_shift_in_a_feature_the_model_ignores_does_not_alarm_weighted() -> None:
    report = detect_drift(shifted(seed=1), shifted(seed=2, shift=1.0))
    assert report.drifted_features == ["ignored"] and report.dataset_drift  # univariate alarms
    importances = {"used": 0.2, "ignored": 0.0, "other": 0.01}
    alarm = dataset_alarm(report, "weighted", importances=importances)
    assert alarm.alarm is False
    assert alarm.score == 0.0 and alarm.raw_share == pytest.approx(1 / 3)
    # the same shift in the feature the model relies on does alarm
    swapped = dataset_alarm(report, "weighted", importances={"ignored": 0.2, "used": 0.01})
    assert swapped.alarm is True and swapped.weighted_share == pytest.approx(0.2 / 0.21)


def test_weighted_without_importances_says_so_and_counts_every_feature_alike() -> None:
    report = detect_drift(shifted(seed=1), shifted(seed=2, shift=1.0))
    alarm = dataset_alarm(report, "weighted", importances=None)
    assert alarm.alarm is True and alarm.score == pytest.approx(1 / 3)  # the plain share
    assert dataset_alarm(report, "weighted", weighted_share=0.5).alarm is False
    assert any(s.startswith("weighted: no feature importances") for s in alarm.skipped)
    negative = dataset_alarm(report, "weighted", importances={"used": -0.1, "ignored": 0.0})
    assert negative.skipped  # all-noise importances are no weights either


def test_calibrated_keeps_drift_inside_the_references_own_variation_quiet() -> None:
    # the reference's periods differ by as much as the current one does: normal variation
    periods = [shifted(1000, seed=s, shift=0.6 * (s % 2)) for s in range(4)]
    reference = pd.concat(periods, ignore_index=True)
    current = shifted(1000, seed=9, shift=0.6)
    report = detect_drift(reference, current)
    assert report.dataset_drift  # the any-feature rule alarms
    bands = calibrate(periods, lambda f: fit_reference(f))
    alarm = dataset_alarm(report, "calibrated", calibration=bands)
    assert alarm.alarm is False
    assert "inside the reference's normal variation: ignored" in alarm.reasons[0]
    # a shift well beyond it does alarm
    far = detect_drift(reference, shifted(1000, seed=9, shift=3.0))
    assert dataset_alarm(far, "calibrated", calibration=bands).alarm is True


def test_calibrated_without_bands_names_why_and_keeps_the_feature_verdict() -> None:
    report = detect_drift(shifted(seed=1), shifted(seed=2, shift=1.0))
    alarm = dataset_alarm(report, "calibrated", calibration_skipped="1 reference period")
    assert alarm.alarm is True
    assert alarm.skipped == ["calibrated: 1 reference period; the feature verdict counts as is"]


def test_multivariate_uses_the_classifier_and_falls_back_when_it_was_skipped() -> None:
    report = detect_drift(shifted(seed=1), shifted(seed=2, shift=1.0))
    skipped = dataset_alarm(report, "multivariate")
    assert skipped.alarm is report.dataset_drift
    assert skipped.skipped[0].startswith("multivariate: not computed")
    report.multivariate = MultivariateDrift.skip("120 rows (needs 200 per side)")
    assert "120 rows" in dataset_alarm(report, "multivariate").skipped[0]
    ref = shifted(seed=1)
    real = fit_reference(ref, sample_rows=2000).compare(
        shifted(seed=2, shift=1.0), multivariate=True
    )
    alarm = dataset_alarm(real, "multivariate")
    assert alarm.alarm is real.multivariate.classifier.drifted is True
    assert alarm.score == real.multivariate.classifier.auc
    # a combination alarms only when its feature part agrees with the classifier
    quiet = dataset_alarm(real, "multivariate+weighted", importances={"used": 1.0})
    assert quiet.alarm is False


@pytest.mark.parametrize(
    "mode", ["", "bogus", "weighted+weighted", "univariate+weighted", "calibrated+nope"]
)
def test_unknown_modes_name_the_setting(mode: str) -> None:
    with pytest.raises(VerdictError, match=r"RETRAIN_DRIFT_VERDICT|univariate combines"):
        parse_mode(mode)
    assert parse_mode("calibrated + weighted") == ("calibrated", "weighted")


POLICY = RetrainPolicy(degradation=0.1)  # the live-metric threshold: a 10% relative drop


@pytest.mark.parametrize("mode", ["estimated", "weighted+estimated"])
def test_estimated_keeps_the_drift_alarm_only_when_the_estimate_drops(mode: str) -> None:
    report = detect_drift(shifted(seed=1), shifted(seed=2, shift=1.0))
    importances = {"ignored": 1.0, "used": 0.1}  # the weighted part alarms too
    assert dataset_alarm(report, mode.replace("+estimated", "").replace("estimated",
                         "univariate"), importances=importances).alarm  # fmt: skip
    flat = dataset_alarm(report, mode, importances=importances,
                         estimate=EstimateGate(POLICY, 0.86, 0.90))  # fmt: skip
    assert flat.alarm is False and flat.mode == mode and not flat.skipped
    assert "performance holds" in flat.reasons[-1]
    assert flat.score > 0 and flat.features == ["ignored"]  # the drift part still reports
    dropped = dataset_alarm(
        report, mode, importances=importances, estimate=EstimateGate(POLICY, 0.72, 0.90)
    )  # 20% worse
    assert dropped.alarm is True and "20.0% worse" in dropped.reasons[-1]
    # lower-is-better metrics are reversed by the same rule (rmse up 20%)
    rmse = EstimateGate(POLICY, 1.2, 1.0, higher_is_better=False)
    assert dataset_alarm(report, mode, importances=importances, estimate=rmse).alarm is True


def test_estimated_never_raises_an_alarm_the_drift_part_does_not() -> None:
    report = detect_drift(shifted(seed=1), shifted(seed=2))
    assert not report.dataset_drift
    alarm = dataset_alarm(report, "estimated", estimate=EstimateGate(POLICY, 0.5, 0.9))
    assert alarm.alarm is False


@pytest.mark.parametrize(
    ("gate", "why"),
    [
        (None, "no estimate of the serving model's metric"),
        (EstimateGate(POLICY, None, 0.9, skipped="the model gives no class probabilities"),
         "the model gives no class probabilities"),
        (EstimateGate(POLICY, None, 0.9,
                      skipped="the calibration set (holdout) holds a single class (1)"),
         "single class"),
        (EstimateGate(POLICY, 0.5, None), "no baseline metric"),
    ],
)  # fmt: skip
def test_estimated_without_an_estimate_falls_back_to_the_drift_part_and_says_so(
    gate: EstimateGate | None, why: str
) -> None:
    report = detect_drift(shifted(seed=1), shifted(seed=2, shift=1.0))
    alarm = dataset_alarm(report, "weighted+estimated", importances={"ignored": 1.0},
                          estimate=gate)  # fmt: skip
    assert alarm.alarm is True  # the weighted part decides alone
    assert alarm.mode == "weighted+estimated"
    assert (
        [s for s in alarm.skipped if s.startswith("estimated:")]
        == [s for s in alarm.skipped if why in s and "the drift verdict alone decides" in s]
        != []
    )


def test_estimated_modes_parse_and_univariate_still_combines_with_nothing() -> None:
    assert parse_mode("weighted+estimated") == ("weighted", "estimated")
    assert parse_mode("estimated") == ("estimated",)
    with pytest.raises(VerdictError, match="univariate combines"):
        parse_mode("univariate+estimated")
