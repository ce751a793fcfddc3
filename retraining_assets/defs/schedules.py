"""Schedules: each monitoring period is monitored as soon as it is complete; retraining runs
on a calendar of its own (``RETRAIN_RETRAIN_SCHEDULE``), for the newest complete period; with
a label delay (``RETRAIN_LABEL_DELAY``), a period's performance is scored again once all of
its labels have arrived."""

from datetime import datetime

import dagster as dg

from retraining_assets.core.labels import labels_complete_period
from retraining_assets.core.pipeline import Pipeline, retrain_policy
from retraining_assets.core.triggers import Signals
from retraining_assets.defs.jobs import monitoring_job_name, retraining_job_name
from retraining_assets.defs.periods import naive_utc, retraining_target
from retraining_assets.defs.resources import ClockResource
from retraining_assets.defs.signals import request_tags

LABELS_UNTIL = "retrain/labels_until"
"""Run tag of a labelled-performance run: the end of the period whose labels it scores."""


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
    labelled = build_labelled_performance_schedule(
        pipeline, by_name[monitoring_job_name(pipeline.name)]
    )
    return [monitoring, *(s for s in (retraining, labelled) if s is not None)]


def labelled_performance_schedule_name(pipeline_name: str) -> str:
    return f"{pipeline_name}_labelled_performance_schedule"


def labelled_performance_keys(pipeline_name: str) -> list[dg.AssetKey]:
    """What is scored again once a period's labels are in: the live metric, and the estimate
    beside the realized metric (so the UI shows both for the same period)."""
    return [
        dg.AssetKey([pipeline_name, key])
        for key in ("champion_performance", "estimated_performance")
    ]


def build_labelled_performance_schedule(pipeline: Pipeline, job) -> dg.ScheduleDefinition | None:
    """With ``RETRAIN_LABEL_DELAY`` (None without): each tick asks the monitoring job for
    ``champion_performance`` and ``estimated_performance`` of the newest period whose labels
    have all arrived (``core.labels.labels_complete_period``), once per period (run key). The
    monitoring schedule scored that period when it ended, on the few labels there were; the
    labelled performance trigger reads this run's metric."""
    delay = pipeline.settings.label_delay_duration
    if delay is None:
        return None
    name, scales = pipeline.name, pipeline.timescales
    hourly = scales.period == "hourly"
    # daily (hourly for hourly periods): a delay need not end on a period boundary, so a
    # period's labels are scored within a day (an hour) of arriving; repeats dedupe on the key
    cron = "15 * * * *" if hourly else "15 0 * * *"

    @dg.schedule(
        name=labelled_performance_schedule_name(name),
        cron_schedule=cron,
        job=job,
        execution_timezone="UTC",
        default_status=schedule_status(pipeline),
        description=f"Scores the champion again on the newest {scales.period} period whose "
        f"labels have all arrived (RETRAIN_LABEL_DELAY={delay}): champion_performance, which "
        "the performance trigger reads, and estimated_performance beside it.",
    )
    def labelled_performance_schedule(
        context: dg.ScheduleEvaluationContext, clock: ClockResource
    ) -> dg.RunRequest | dg.SkipReason:
        moment = scheduled_moment(context, clock)
        start = labels_complete_period(scales, moment, delay, pipeline.data_start)
        if start is None:
            return dg.SkipReason(
                f"{moment:%Y-%m-%d %H:%M}: no period's labels are complete yet "
                f"(RETRAIN_LABEL_DELAY={delay})"
            )
        partition = scales.label(start)
        return dg.RunRequest(
            run_key=f"labelled_performance:{partition}",
            partition_key=partition,
            asset_selection=labelled_performance_keys(name),
            tags={LABELS_UNTIL: scales.period_end(start).isoformat()},
        )

    return labelled_performance_schedule


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
