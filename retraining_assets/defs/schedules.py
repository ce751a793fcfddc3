"""Schedules: each monitoring period is monitored as soon as it is complete; retraining runs
on a calendar of its own (``RETRAIN_RETRAIN_SCHEDULE``), for the newest complete period."""

from datetime import datetime

import dagster as dg

from retraining_assets.core.pipeline import Pipeline, retrain_policy
from retraining_assets.core.triggers import Signals
from retraining_assets.defs.jobs import monitoring_job_name, retraining_job_name
from retraining_assets.defs.periods import naive_utc, retraining_target
from retraining_assets.defs.resources import ClockResource
from retraining_assets.defs.signals import request_tags


def schedule_status(pipeline: Pipeline) -> dg.DefaultScheduleStatus:
    running = pipeline.settings.automation_running
    return dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED


def build_schedules(pipeline: Pipeline, jobs: list) -> list:
    by_name = {job.name: job for job in jobs}
    hourly = pipeline.timescales.period == "hourly"
    monitoring = dg.build_schedule_from_partitioned_job(
        # one run per period, for the period that just ended, shortly after it ended
        by_name[monitoring_job_name(pipeline.name)],
        name=f"{pipeline.name}_monitoring_schedule",
        minute_of_hour=15,
        hour_of_day=None if hourly else 0,
        default_status=schedule_status(pipeline),
    )
    retraining = build_retraining_schedule(pipeline, by_name[retraining_job_name(pipeline.name)])
    return [monitoring, *([retraining] if retraining else [])]


def build_retraining_schedule(pipeline: Pipeline, job) -> dg.ScheduleDefinition | None:
    """The retraining calendar (None for ``RETRAIN_RETRAIN_SCHEDULE=none``): each tick asks for
    a retraining on the newest complete monitoring period, whatever the triggers did."""
    scales = pipeline.timescales
    cron = scales.schedule_cron()
    if cron is None:
        return None
    due = Signals(has_champion=True, scheduled=True)
    decision = retrain_policy(pipeline.settings).decide(due)

    @dg.schedule(
        name=f"{pipeline.name}_retraining_schedule",
        cron_schedule=cron,
        job=job,
        execution_timezone="UTC",
        default_status=schedule_status(pipeline),
        description=f"Retrains on the newest complete {scales.period} period on the calendar "
        f"'{scales.schedule}' ({cron}, UTC): the backstop when no trigger fired.",
    )
    def retraining_schedule(
        context: dg.ScheduleEvaluationContext, clock: ClockResource
    ) -> dg.RunRequest | dg.SkipReason:
        moment = scheduled_moment(context, clock)
        target = retraining_target(pipeline, moment)
        if isinstance(target, dg.SkipReason):
            return target
        partition = scales.label(target)
        return dg.RunRequest(
            run_key=f"schedule:{partition}",
            partition_key=partition,
            tags=request_tags(decision, due, moment),
        )

    return retraining_schedule


def scheduled_moment(context: dg.ScheduleEvaluationContext, clock: ClockResource) -> datetime:
    """The tick's own time (naive UTC); the clock's now when evaluated by hand."""
    if context.scheduled_execution_time is not None:
        return naive_utc(context.scheduled_execution_time)
    return clock.now()
