"""The retraining sensor invoked directly (``build_sensor_context``) with the code location's
typed resources and a fixed clock; the daemon-less end-to-end ticks are in test_automation_e2e."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import dagster as dg
import pytest

from retraining_assets.core.pipeline import Pipeline
from retraining_assets.definitions import build_definitions
from retraining_assets.defs.resources import ClockResource

APRIL = datetime(2024, 4, 1, 0, 30)  # March, the third month of the stream, just complete


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def _tick(pipeline: Pipeline, instance: dg.DagsterInstance, moment: datetime):
    defs = build_definitions(pipeline.settings, [pipeline])
    sensor = defs.resolve_sensor_def(f"{pipeline.name}_retraining_sensor")
    resources = {**defs.resources, "clock": ClockResource(moment=moment.isoformat())}
    with dg.build_sensor_context(
        instance=instance, resources=resources, definitions=defs
    ) as context:
        return sensor(context)


def test_no_champion_asks_for_the_newest_complete_period(seeded_demo, instance) -> None:
    request = _tick(seeded_demo, instance, APRIL)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2024-03-01"
    assert "no_champion" in request.tags["retrain/causes"]
    assert request.tags["retrain/requested_at"] == APRIL.isoformat()
    assert request.run_key == "2024-03-01:never"  # nothing trained on yet


def test_before_a_whole_training_window_it_waits(seeded_demo, instance) -> None:
    skip = _tick(seeded_demo, instance, datetime(2024, 2, 10))
    assert isinstance(skip, dg.SkipReason)
    assert "is not complete yet" in skip.skip_message


def test_a_retraining_in_progress_is_not_asked_for_twice(seeded_demo, instance) -> None:
    run_id = str(uuid.uuid4())
    instance.add_run(
        dg.DagsterRun(
            job_name="demo_retraining_job", run_id=run_id, status=dg.DagsterRunStatus.STARTED
        )
    )
    skip = _tick(seeded_demo, instance, APRIL)
    assert isinstance(skip, dg.SkipReason) and run_id in skip.skip_message


def test_its_resources_can_be_given_as_arguments(seeded_demo, instance) -> None:
    defs = build_definitions(seeded_demo.settings, [seeded_demo])
    sensor = defs.resolve_sensor_def("demo_retraining_sensor")
    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        request = sensor(
            context,
            platform=defs.resources["platform"],
            records=defs.resources["records"],
            clock=ClockResource(moment=APRIL.isoformat()),
        )
    assert isinstance(request, dg.RunRequest) and request.partition_key == "2024-03-01"
