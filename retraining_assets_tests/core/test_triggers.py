from datetime import datetime, timedelta

import pytest

from retraining_assets.core.triggers import Cause, RetrainPolicy, Signals, relative_drop

POLICY = RetrainPolicy(volume_threshold=1000, degradation=0.1, cooldown=timedelta(hours=6))
NOW = datetime(2026, 11, 1, 12)


def _signals(**values) -> Signals:
    return Signals(**{"has_champion": True, "now": NOW, **values})


def test_nothing_new_means_no_retrain() -> None:
    decision = POLICY.decide(
        _signals(drift_detected=False, new_records=10, live_metric=0.8, baseline_metric=0.81)
    )
    assert not decision.retrain and decision.reasons == ()
    assert decision.summary() == "no reason to retrain"


def test_first_model_is_always_wanted() -> None:
    decision = POLICY.decide(Signals(has_champion=False))
    assert decision.retrain and decision.causes == ["no_champion"]


def test_drift_triggers_with_the_features_named() -> None:
    decision = POLICY.decide(_signals(drift_detected=True, drifted_features=("income", "channel")))
    assert decision.retrain and "drift in income, channel" in decision.summary()


@pytest.mark.parametrize(("records", "retrain"), [(999, False), (1000, False), (1001, True)])
def test_volume_fires_only_above_the_threshold(records: int, retrain: bool) -> None:
    assert POLICY.decide(_signals(new_records=records)).retrain is retrain


@pytest.mark.parametrize(
    ("live", "baseline", "higher", "retrain"),
    [
        (0.70, 0.80, True, True),
        (0.75, 0.80, True, False),
        (1.2, 1.0, False, True),
        (1.05, 1.0, False, False),
        (None, 0.8, True, False),
    ],
)
def test_performance_degradation_respects_the_metric_direction(
    live, baseline, higher, retrain
) -> None:
    decision = POLICY.decide(
        _signals(live_metric=live, baseline_metric=baseline, higher_is_better=higher)
    )
    assert decision.retrain is retrain
    if retrain:
        assert decision.causes == [Cause.PERFORMANCE.value]


def test_every_reason_is_reported_and_tagged() -> None:
    decision = POLICY.decide(
        _signals(
            drift_detected=True,
            new_records=5000,
            live_metric=0.5,
            baseline_metric=0.8,
            scheduled=True,
        )
    )
    assert decision.causes == ["drift", "volume", "performance", "schedule"]
    tags = decision.tags()
    assert tags["retrain/causes"] == "drift,volume,performance,schedule"
    assert "5000 new records" in tags["retrain/reasons"]


def test_cooldown_holds_back_all_but_the_schedule_and_a_missing_champion() -> None:
    recent = NOW - timedelta(hours=1)
    held = POLICY.decide(_signals(drift_detected=True, last_training=recent))
    assert not held.retrain and held.suppressed_by and held.causes == ["drift"]
    assert POLICY.decide(_signals(scheduled=True, last_training=recent)).retrain
    assert POLICY.decide(Signals(has_champion=False, last_training=recent, now=NOW)).retrain
    later = NOW - timedelta(hours=7)
    assert POLICY.decide(_signals(drift_detected=True, last_training=later)).retrain


def test_relative_drop() -> None:
    assert relative_drop(0.72, 0.8, True) == pytest.approx(0.1)
    assert relative_drop(1.1, 1.0, False) == pytest.approx(0.1)
    assert relative_drop(-0.6, -0.5, True) == pytest.approx(0.2)  # negative baseline (R²)
    assert relative_drop(0.5, 0.0, True) == pytest.approx(-0.5)  # near zero: the difference
    assert relative_drop(None, 0.8, True) is None


def test_a_drift_the_last_training_acted_on_is_not_a_reason_again() -> None:
    policy = RetrainPolicy()
    seen = Signals(
        has_champion=True,
        drift_detected=True,
        drifted_features=("income",),
        drift_acted_on=("income", "utilization"),
    )
    assert not policy.decide(seen).retrain
    widened = Signals(
        has_champion=True,
        drift_detected=True,
        drifted_features=("income", "channel"),
        drift_acted_on=("income", "utilization"),
    )
    assert policy.decide(widened).causes == ["drift"]
