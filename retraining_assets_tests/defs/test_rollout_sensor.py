"""The rollout sensor invoked directly (``build_sensor_context``) on a real registry and
prediction log; the sensor-and-job flow on simulated traffic is in test_rollout_flow.py."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from retraining_assets.core.lifecycle import change_champion
from retraining_assets.core.pipeline import Pipeline, demo_pipeline, rollout_plan
from retraining_assets.core.prediction_log import Outcome, Prediction, PredictionLog
from retraining_assets.core.registry import CHALLENGER, Actor, Registry, utc_now
from retraining_assets.core.rollout import transitions
from retraining_assets.core.strategies import Strategy
from retraining_assets.definitions import build_definitions
from retraining_assets.defs.rollout_sensor import STATE_TAG
from retraining_assets.settings import Settings
from retraining_assets_tests.conftest import SMALL_STREAM, trained_version

ACTOR = Actor(by="alice", actual_user="test")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def pipeline(settings: Settings) -> Pipeline:
    """Gradual rollouts whose steps last at least a day: a step with no outcomes yet is not
    worth judging."""
    gradual = settings.model_copy(
        update={"promotion_strategy": Strategy.GRADUAL, "rollout_min_hours": 24.0}
    )
    return demo_pipeline(gradual, SMALL_STREAM)


@pytest.fixture
def defs(pipeline: Pipeline) -> dg.Definitions:
    return build_definitions(pipeline.settings, [pipeline])


def _registry(defs: dg.Definitions) -> Registry:
    return defs.resources["platform"].registry()


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance):
    sensor = defs.resolve_sensor_def("demo_rollout_sensor")
    with dg.build_sensor_context(
        instance=instance, resources=defs.resources, definitions=defs
    ) as context:
        return sensor(context)


def _start(defs: dg.Definitions, pipeline: Pipeline) -> transitions.Rollout:
    registry, notifier = _registry(defs), defs.resources["notifier"].notifier()
    champion, challenger = trained_version(registry, seed=0), trained_version(registry, seed=1)
    change_champion(
        registry, notifier, "demo", champion, expected_current=None, actor=ACTOR, reason="first"
    )
    return transitions.start_rollout(
        registry, notifier, "demo", challenger, rollout_plan(pipeline), actor=ACTOR, reason="test"
    )


def _observe(registry: Registry, rollout: transitions.Rollout, n: int) -> None:
    """``n`` predictions served by the challenger at the rollout's step, each with its outcome."""
    now = utc_now()
    ids = [f"{rollout.id}-{rollout.step}-{i}" for i in range(n)]
    version = rollout.challenger_version
    with PredictionLog(registry.engine) as log:
        log.add_predictions(
            [
                Prediction(i, "demo", i, CHALLENGER, version, rollout.id, "1", 0.8, now, 0)
                for i in ids
            ]
        )
        log.add_outcomes([Outcome(i, "demo", "1", None, now) for i in ids])
        log.flush()


def test_without_an_active_rollout_it_skips(defs, instance) -> None:
    skip = _tick(defs, instance)
    assert isinstance(skip, dg.SkipReason) and "no active rollout of 'demo'" in skip.skip_message


def test_a_fresh_step_without_outcomes_is_not_judged(defs, pipeline, instance) -> None:
    rollout = _start(defs, pipeline)
    skip = _tick(defs, instance)
    assert isinstance(skip, dg.SkipReason)
    assert skip.skip_message == f"rollout {rollout.id}: no outcomes yet at step 1"


def test_new_outcomes_ask_for_one_judgement_of_that_state(defs, pipeline, instance) -> None:
    rollout = _start(defs, pipeline)
    _observe(_registry(defs), rollout, 5)
    request = _tick(defs, instance)
    assert isinstance(request, dg.RunRequest)
    state = f"{rollout.id}:0:5:early"  # step 1, five outcomes, its day not over
    assert request.run_key == state and request.tags[STATE_TAG] == state
    assert request.tags["retrain/challenger"] == f"v{rollout.challenger_version}"
    # once a run judged that state, the sensor waits for news
    instance.add_run(
        dg.DagsterRun(
            job_name="demo_rollout_job", run_id="judged", tags=request.tags,
            status=dg.DagsterRunStatus.SUCCESS,
        )
    )  # fmt: skip
    skip = _tick(defs, instance)
    assert isinstance(skip, dg.SkipReason) and f"already judged {state}" in skip.skip_message
