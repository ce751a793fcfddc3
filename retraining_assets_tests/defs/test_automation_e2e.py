"""The whole loop through the real definitions at simulated time: the retraining schedule's
ticks, the monitoring job, daemon-less ticks of the retraining sensor, the runs they request.

Two pipelines: one on daily monitoring periods, where records arriving mid-month must be
trained on before the month ends; and one kept on monthly periods (``RETRAIN_PARTITION=monthly``,
as before daily monitoring), whose assertions come from the demo stream's ground truth.
"""

from collections.abc import Iterator, Mapping
from datetime import datetime
from types import MappingProxyType

import dagster as dg
import pandas as pd
import pytest

from retraining_assets.core.database import platform_engine
from retraining_assets.core.demo import ABRUPT, CONCEPT, STABLE, DemoStream
from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.core.registry import Registry
from retraining_assets.definitions import build_definitions
from retraining_assets.demo.simulation import MONITORING_DELAY, Simulation
from retraining_assets.settings import load_settings
from retraining_assets_tests.conftest import MONTHLY

# --- weekly monitoring --------------------------------------------------------------------
# ~460 records a week from January to March 2024; a 21-day training window and a volume
# trigger of 800 records (about two weeks of them), so that volume fires in mid-month
WEEKLY_STREAM = DemoStream(rows_per_month=2000, months=3, end_month=pd.Timestamp("2024-03-01"))
WEEKLY = {
    "partition": "weekly",
    "training_window": "21d",
    "drift_window": 2,
    "drift_min_records": 100,
    "volume_trigger": 800,
    "model_families": ["xgboost"],
}
WEEKS = [f"{day:%Y-%m-%d}" for day in pd.date_range("2023-12-31", "2024-03-03", freq="7D")]
LATER = datetime(2024, 4, 1, 0, 16)  # four weeks on, nothing monitored in between


@pytest.fixture(scope="module")
def weekly(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The weeks from 2023-12-31 (weeks start on Sunday; the records on Monday, January 1) to
    March 9 lived one by one, every record of the quarter already in the table."""
    settings = load_settings(home=tmp_path_factory.mktemp("weekly") / ".retrain", **WEEKLY)
    WEEKLY_STREAM.seed_database(platform_engine(settings.platform_database_url))
    pipeline = demo_pipeline(settings, WEEKLY_STREAM)
    with dg.instance_for_test() as instance:
        simulation = Simulation(build_definitions(settings, [pipeline]), pipeline, instance)
        simulation.refresh_reference()
        outcomes = {week: simulation.period(week) for week in WEEKS}
        yield MappingProxyType(
            {
                "simulation": simulation,
                "registry": Registry.from_settings(settings),
                "outcomes": MappingProxyType(outcomes),
            }
        )


@pytest.fixture
def weekly_clock(weekly: Mapping) -> Iterator[Simulation]:
    """The weekly simulation for a test that moves its clock: put back afterwards."""
    simulation = weekly["simulation"]
    before = simulation.now
    yield simulation
    simulation.now = before


def month_end(moment: datetime) -> datetime:
    return (pd.Timestamp(moment).normalize() + pd.offsets.MonthBegin(1)).to_pydatetime()


def _version_of(registry: Registry, result: dg.ExecuteInProcessResult):
    return next(v for v in registry.list_versions("demo") if v.run_id == result.run_id)


def test_the_first_training_waits_for_a_whole_training_window(weekly) -> None:
    outcomes = weekly["outcomes"]
    trained = [week for week, outcome in outcomes.items() if outcome.trained]
    # 21 days from the first week's start: the week of January 14 ends the first whole window
    assert trained[0] == "2024-01-14" and "no_champion" in outcomes["2024-01-14"].causes
    skipped = outcomes["2024-01-07"].sensor.skip_message
    assert "first training window (2024-01-01 to 2024-01-21) is not complete" in skipped


def test_records_arriving_mid_month_are_trained_on_before_the_month_ends(weekly) -> None:
    registry, outcomes = weekly["registry"], weekly["outcomes"]
    scales = weekly["simulation"].pipeline.timescales
    volume = [w for w, o in outcomes.items() if o.retrain_causes == "volume" and o.trained]
    assert volume == ["2024-02-04", "2024-02-18", "2024-03-03"]
    versions = registry.list_versions("demo")
    for week in volume:
        outcome = outcomes[week]
        end = scales.period_end(datetime.fromisoformat(week))
        asked = outcome.requests[-1][0]  # the sensor's tick: 15 minutes after the week ended
        assert asked == end + MONITORING_DELAY
        assert asked < month_end(end - MONITORING_DELAY)  # within the records' month
        assert outcome.sensor.partition_key == week  # the newest complete week
        version = _version_of(registry, outcome.retraining)
        previous = versions[versions.index(version) - 1]
        # the window ends with the week and holds every record since the previous training
        assert version.train_end == end
        assert version.train_start <= previous.train_end < version.train_end


def test_the_monthly_schedule_trains_when_no_trigger_fired(weekly) -> None:
    outcomes = weekly["outcomes"]
    assert not isinstance(outcomes["2024-01-21"].sensor, dg.RunRequest)  # no trigger
    # the tick at 03:00 on February 1 falls in the week of January 28 and asks for the newest
    # complete week, that of January 21
    week = outcomes["2024-01-28"]
    assert week.requests[0] == (datetime(2024, 2, 1, 3), ["schedule"])
    assert week.schedule.partition_key == "2024-01-21"
    version = _version_of(weekly["registry"], week.scheduled)
    assert version.train_end == datetime(2024, 1, 28)
    asked = [w for w, o in outcomes.items() if isinstance(o.schedule, dg.RunRequest)]
    assert asked == ["2024-01-28", "2024-02-25"]  # February 1 and March 1
    # January 1 came before the first whole training window
    assert "is not complete yet" in outcomes["2023-12-31"].schedule.skip_message


def test_two_triggers_in_the_same_period_train_once(
    weekly: Mapping, weekly_clock: Simulation
) -> None:
    outcomes, registry = weekly["outcomes"], weekly["registry"]
    # volume trained the week of February 18; the schedule's tick on March 1 asks for it too
    march = outcomes["2024-02-25"]
    assert march.schedule.partition_key == "2024-02-18"
    assert march.scheduled.success
    assert not march.scheduled.asset_materializations_for_node("demo__training_data")
    trained = [v for v in registry.list_versions("demo") if v.train_end == datetime(2024, 2, 25)]
    assert len(trained) == 1
    # another sensor tick at the same moment asks for nothing: the records were trained on
    simulation = weekly_clock
    simulation.now = datetime(2024, 2, 25) + MONITORING_DELAY
    assert not isinstance(simulation.tick(), dg.RunRequest)


def test_backfilling_an_old_period_does_not_move_the_target(weekly_clock: Simulation) -> None:
    simulation = weekly_clock
    simulation.now = LATER  # nothing monitored since March 9; records kept arriving
    backfill = simulation.job("demo_monitoring_job").execute_in_process(
        instance=simulation.instance, partition_key="2024-01-14"
    )
    assert backfill.success
    request = simulation.tick()
    # volume is evaluated on every tick, for the newest complete week, whatever was monitored
    assert isinstance(request, dg.RunRequest), request
    assert request.partition_key == "2024-03-24"
    assert "volume" in request.tags["retrain/causes"]


# --- monthly monitoring (RETRAIN_PARTITION=monthly) ----------------------------------------
# 800 records a month: one month after a training stays under the 1,000-record volume
# trigger, two months cross it
STREAM = DemoStream(
    rows_per_month=800, months=CONCEPT.first_offset + 2, end_month=pd.Timestamp("2024-12-01")
)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("e2e") / ".retrain"
    # the triggers alone in the loop (no schedule), so each reason shows where it fires; one
    # model family, as in the weekly loop: the triggers and the gate do not depend on how many
    # compete, and four of them made most of the 13 trainings' time
    settings = load_settings(
        home=home,
        **MONTHLY,
        retrain_schedule="none",
        volume_trigger=1000,
        model_families=["xgboost"],
    )
    engine = platform_engine(settings.platform_database_url)
    STREAM.seed_database(engine, through=2)
    pipeline = demo_pipeline(settings, STREAM)
    with dg.instance_for_test() as instance:
        simulation = Simulation(build_definitions(settings, [pipeline]), pipeline, instance)
        simulation.refresh_reference()
        outcomes = {}
        for offset in range(STREAM.months):
            STREAM.seed_database(engine, through=offset)  # the month's records arrive
            outcomes[offset] = simulation.period(STREAM.partition_key(offset))
        monthly = load_settings(home=home, **MONTHLY)  # the default schedule, for its view
        defs = build_definitions(monthly, [demo_pipeline(monthly, STREAM)])
        yield MappingProxyType(
            {"outcomes": MappingProxyType(outcomes), "defs": defs, "instance": instance}
        )


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


def test_the_monthly_schedule_asks_for_the_last_complete_month(history) -> None:
    schedule = history["defs"].resolve_schedule_def("demo_retraining_schedule")
    assert schedule.cron_schedule == "0 3 1 * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    with dg.build_schedule_context(
        instance=history["instance"],
        scheduled_execution_time=pd.Timestamp("2024-12-01 03:00", tz="UTC").to_pydatetime(),
        repository_def=history["defs"].get_repository_def(),
        resources=history["defs"].resources,  # the schedule takes the clock as a parameter
    ) as context:
        result = schedule.evaluate_tick(context)
    [request] = result.run_requests
    assert request.partition_key == "2024-11-01"
    assert request.tags["retrain/causes"] == "schedule"
