"""The rollout sensor: asks for a judgement of the active rollout whenever there is news."""

import dagster as dg

from retraining_assets.core import prediction_log
from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.registry import utc_now
from retraining_assets.core.rollout import transitions
from retraining_assets.defs.jobs import rollout_job_name
from retraining_assets.defs.resources import PlatformResource
from retraining_assets.defs.sensors import ACTIVE, automation_status

STATE_TAG = "retrain/rollout_state"  # the state a rollout run judged: never judged twice


def build_rollout_sensor(pipeline: Pipeline) -> dg.SensorDefinition:
    name = pipeline.name
    job_name = rollout_job_name(name)

    @dg.sensor(
        name=f"{name}_rollout_sensor",
        job_name=job_name,
        minimum_interval_seconds=pipeline.settings.rollout_check_seconds,
        default_status=automation_status(pipeline),
        description="Judges the active rollout again when its current step has new outcomes or "
        "has just run for its minimum time. Reads the rollout row and a COUNT of outcomes only.",
    )
    def rollout_sensor(
        context: dg.SensorEvaluationContext, platform: PlatformResource
    ) -> dg.RunRequest | dg.SkipReason:
        registry = platform.registry()
        active = transitions.active_rollout(registry, name)
        if active is None:
            return dg.SkipReason(f"no active rollout of '{name}'")
        outcomes = prediction_log.outcome_count(
            registry.engine, name, active.id, None, step=active.step
        )
        elapsed = utc_now() - active.step_started_at
        timed = active.plan.step_timed(active.step, elapsed)
        if outcomes == 0 and not active.plan.step_ready(active.step, elapsed, 0):
            return dg.SkipReason(f"rollout {active.id}: no outcomes yet at step {active.step + 1}")
        # what a judgement depends on: the step, its outcomes, whether its time is up
        state = f"{active.id}:{active.step}:{outcomes}:{'timed' if timed else 'early'}"
        running = context.instance.get_run_records(
            dg.RunsFilter(job_name=job_name, statuses=ACTIVE), limit=1
        )
        if running:
            return dg.SkipReason(f"rollout run {running[0].dagster_run.run_id} is in progress")
        judged = context.instance.get_run_records(
            dg.RunsFilter(job_name=job_name, tags={STATE_TAG: state}), limit=1
        )
        if judged:
            return dg.SkipReason(f"run {judged[0].dagster_run.run_id} already judged {state}")
        return dg.RunRequest(
            run_key=state,
            tags={
                STATE_TAG: state,
                "retrain/rollout_id": str(active.id),
                "retrain/rollout_step": str(active.step + 1),
                "retrain/challenger": f"v{active.challenger_version}",
                "retrain/outcomes": str(outcomes),
            },
        )

    return rollout_sensor
