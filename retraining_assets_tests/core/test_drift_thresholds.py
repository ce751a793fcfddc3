"""The drift thresholds' rules, made once in ``DriftThresholds`` and reported by the settings
under their own names and variables."""

from __future__ import annotations

import dataclasses
import math

import pytest

from retraining_assets.core.drift import DriftThresholds, ThresholdError
from retraining_assets.core.drift_thresholds import BOUNDS
from retraining_assets.settings import DRIFT_KNOBS, SettingsError, load_settings


@pytest.mark.parametrize(
    ("knob", "value"),
    [("psi_alert", 0.0), ("psi_warning", -0.1), ("wasserstein", math.inf),
     ("jensen_shannon", -1.0), ("unseen_share", 0.0), ("significance", 1.0),
     ("dataset_drift_share", 1.01), ("null_rate", math.nan)],
)  # fmt: skip
def test_a_threshold_out_of_its_range_is_refused_naming_it(knob: str, value: float) -> None:
    with pytest.raises(ThresholdError, match=f"DriftThresholds.{knob} = ") as raised:
        DriftThresholds(**{knob: value})
    assert raised.value.fields == (knob,)
    assert str(BOUNDS[knob]) in str(raised.value)


def test_the_edges_of_the_ranges_are_accepted() -> None:
    DriftThresholds(dataset_drift_share=0.0, null_rate=0.0, jensen_shannon=5, unseen_share=5)
    DriftThresholds(dataset_drift_share=1.0, psi_alert=0.1, psi_warning=0.1)


def test_psi_warning_above_the_alert_names_both() -> None:
    named = r"psi_warning = 0\.3 must not exceed psi_alert = 0\.2"
    with pytest.raises(ThresholdError, match=named):
        DriftThresholds(psi_warning=0.3)


def test_every_drift_setting_sets_a_knob_and_every_ranged_knob_has_a_setting_or_a_default() -> None:
    knobs = {field.name for field in dataclasses.fields(DriftThresholds)}
    assert set(DRIFT_KNOBS.values()) <= knobs
    assert set(BOUNDS) <= knobs
    settings = load_settings(psi_alert=0.3, ks_significance=0.01, jensen_shannon_threshold=0.2)
    thresholds = settings.drift_thresholds()
    assert (thresholds.psi_alert, thresholds.significance) == (0.3, 0.01)
    assert thresholds.jensen_shannon == 0.2
    assert thresholds.null_rate == DriftThresholds().null_rate  # not a setting


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"psi_warning": 0.5, "psi_alert": 0.2},
         r"'psi_warning' \(RETRAIN_PSI_WARNING\) = 0.5 must not exceed 'psi_alert' "
         r"\(RETRAIN_PSI_ALERT\) = 0.2"),
        ({"ks_significance": 1.5}, r"'ks_significance' \(RETRAIN_KS_SIGNIFICANCE\) = 1.5 must be"),
        ({"jensen_shannon_threshold": -2},
         r"'jensen_shannon_threshold' \(RETRAIN_JENSEN_SHANNON_THRESHOLD\) = -2 must be "
         r"a finite number > 0"),
        ({"wasserstein_threshold": 0}, r"'wasserstein_threshold' .* must be a finite number > 0"),
    ],
)  # fmt: skip
def test_the_settings_report_the_rule_under_the_setting_and_its_variable(
    overrides: dict[str, float], named: str
) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(**overrides)


def test_a_variable_out_of_range_is_refused_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAIN_DATASET_DRIFT_SHARE", "1.2")
    with pytest.raises(SettingsError, match="RETRAIN_DATASET_DRIFT_SHARE"):
        load_settings()
