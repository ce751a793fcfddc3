"""The whole loop on the demo stream, month after month, through the real definitions: the
monitoring job, daemon-less ticks of the retraining sensor, the retraining runs it requests.
Assertions come from the stream's documented ground truth."""

import dagster as dg
import pandas as pd
import pytest

from retraining_assets.core.database import platform_engine
from retraining_assets.core.demo import ABRUPT, CONCEPT, STABLE, DemoStream
from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.definitions import build_definitions
from retraining_assets.demo.simulation import Simulation
from retraining_assets.settings import load_settings

# 800 records a month: one month after a training stays under the 1,000-record volume
# trigger, two months cross it
STREAM = DemoStream(
    rows_per_month=800, months=CONCEPT.first_offset + 2, end_month=pd.Timestamp("2024-12-01")
)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("e2e") / ".retrain"
    settings = load_settings(home=home, retrain_cooldown_hours=0)
    engine = platform_engine(settings.platform_database_url)
    STREAM.seed_database(engine, through=0)
    pipeline = demo_pipeline(settings, STREAM)
    with dg.instance_for_test() as instance:
        simulation = Simulation(build_definitions(settings, [pipeline]), pipeline, instance)
        simulation.refresh_reference()
        outcomes = {}
        for offset in range(STREAM.months):
            STREAM.seed_database(engine, through=offset)  # the month's records arrive
            outcomes[offset] = simulation.period(STREAM.partition_key(offset))
        # the schedule's view: what a monthly schedule evaluation would launch
        schedule = simulation.defs.resolve_schedule_def("demo_retraining_schedule")
        yield {"outcomes": outcomes, "schedule": schedule}


def causes(outcome) -> set[str]:
    if not isinstance(outcome.sensor, dg.RunRequest):
        return set()
    return set(outcome.sensor.tags["retrain/causes"].split(","))


def promoted(outcome) -> bool:
    return outcome.value("champion_model", "version") is not None


def test_first_training_waits_for_a_full_window(history) -> None:
    outcomes = history["outcomes"]
    assert not causes(outcomes[0]) and not causes(outcomes[1])
    assert "no_champion" in causes(outcomes[2]) and promoted(outcomes[2])


def test_stable_stretch_raises_no_drift_alarm_and_keeps_the_champion(history) -> None:
    for offset in range(STABLE.first_offset, STABLE.last_offset + 1):
        outcome = history["outcomes"][offset]
        assert outcome.value("drift_report", "drift_detected") is False, offset
        if offset > 2:
            assert "drift" not in causes(outcome) and not promoted(outcome), offset


def test_volume_fires_when_the_threshold_is_crossed_and_not_before(history) -> None:
    outcomes = history["outcomes"]
    # trained at offset 2 on everything up to then: 800 new records at 3, 1,600 at 4
    assert "volume" not in causes(outcomes[3])
    assert "volume" in causes(outcomes[4])
    assert outcomes[4].retraining is not None and outcomes[4].retraining.success


def test_abrupt_shift_triggers_retraining_by_drift(history) -> None:
    outcome = history["outcomes"][ABRUPT.first_offset]
    assert "drift" in causes(outcome)
    assert {"channel", "credit_score"} <= set(outcome.value("drift_report", "drifted_features"))
    # the champion's own scores moved too (prediction drift, against its training scores)
    assert outcome.value("drift_report", "prediction_drift") is True
    assert outcome.retraining is not None and outcome.retraining.success


def test_concept_drift_is_caught(history) -> None:
    caught = [
        causes(history["outcomes"][offset]) & {"drift", "performance"}
        for offset in (CONCEPT.first_offset, CONCEPT.first_offset + 1)
    ]
    assert any(caught)
    degraded = history["outcomes"][CONCEPT.first_offset]
    live = degraded.value("champion_performance", "live_metric")
    baseline = degraded.value("champion_performance", "baseline_metric")
    assert live < baseline - 0.05  # the champion really got worse on the new concept


def test_every_promotion_passed_the_gate(history) -> None:
    moves = [o for o in history["outcomes"].values() if promoted(o)]
    assert len(moves) >= 2  # the first model and at least one after the events
    for outcome in moves:
        assert outcome.checks["promotion_threshold"] is True, outcome.partition
        assert outcome.value("model_evaluation", "decision") == "promote"


def test_schedule_targets_the_last_complete_month(history) -> None:
    schedule = history["schedule"]
    assert schedule.cron_schedule == "0 3 1 * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
