"""The schedules evaluated daemon-less against a real instance, as the daemon ticks them: with
a label delay, the tick after a period ends also asks for the performance of the newest
period whose labels have all arrived; without one, only the usual monitoring run."""

from datetime import UTC, datetime

import dagster as dg
import pytest

from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.definitions import build_definitions
from retraining_assets.defs.schedules import LABELS_UNTIL
from retraining_assets_tests.conftest import SMALL_STREAM

MONITORED_AT = datetime(2024, 6, 1, 0, 15, tzinfo=UTC)  # May has just ended
LABELLED = "demo_labelled_performance_schedule"


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, name: str) -> list[dg.RunRequest]:
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=MONITORED_AT,
        repository_def=defs.get_repository_def(),
        resources=defs.resources,
    ) as context:
        return list(defs.resolve_schedule_def(name).evaluate_tick(context).run_requests or [])


def _schedules(settings) -> tuple[dg.Definitions, list[str]]:
    defs = build_definitions(settings, [demo_pipeline(settings, SMALL_STREAM)])
    names = [s.name for s in defs.get_repository_def().schedule_defs]
    return defs, names


@pytest.mark.parametrize("delay", ["1M", "30d"])
def test_with_a_delay_the_labels_complete_period_is_scored_again(settings, delay) -> None:
    defs, names = _schedules(settings.model_copy(update={"label_delay": delay}))
    assert LABELLED in names
    schedule = defs.resolve_schedule_def(LABELLED)
    assert schedule.job_name == "demo_monitoring_job" and schedule.cron_schedule == "15 0 * * *"
    with dg.instance_for_test() as instance:
        [monitoring] = _tick(defs, instance, "demo_monitoring_schedule")
        [labelled] = _tick(defs, instance, LABELLED)
    assert monitoring.partition_key == "2024-05-01" and monitoring.asset_selection is None
    # April ended on May 1: a month (or 30 days) later all its labels are in; May's are not
    assert labelled.partition_key == "2024-04-01"
    assert labelled.run_key == "labelled_performance:2024-04-01"
    assert set(labelled.asset_selection) == {
        dg.AssetKey(["demo", "champion_performance"]),
        dg.AssetKey(["demo", "estimated_performance"]),
    }
    assert labelled.tags[LABELS_UNTIL] == "2024-05-01T00:00:00"


def test_without_a_delay_only_the_usual_monitoring_run_is_asked_for(settings) -> None:
    defs, names = _schedules(settings)
    assert LABELLED not in names
    assert names == ["demo_monitoring_schedule", "demo_retraining_schedule"]
    with dg.instance_for_test() as instance:
        [monitoring] = _tick(defs, instance, "demo_monitoring_schedule")
    assert monitoring.partition_key == "2024-05-01" and monitoring.asset_selection is None


def test_before_any_period_has_its_labels_the_tick_says_so(settings) -> None:
    delayed = settings.model_copy(update={"label_delay": "1M"})
    defs, _ = _schedules(delayed)
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2024, 2, 1, 0, 15, tzinfo=UTC),
            repository_def=defs.get_repository_def(),
            resources=defs.resources,
        ) as context,
    ):
        result = defs.resolve_schedule_def(LABELLED).evaluate_tick(context)
    assert not result.run_requests
    assert "no period's labels are complete yet (RETRAIN_LABEL_DELAY=1M)" in result.skip_message
