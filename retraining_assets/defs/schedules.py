"""Schedules: each period is monitored as soon as it is complete; retraining on a calendar."""

import dagster as dg

from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.triggers import Cause, Reason, RetrainDecision
from retraining_assets.defs.jobs import monitoring_job_name, retraining_job_name


def build_schedules(pipeline: Pipeline, jobs: list) -> list:
    by_name = {job.name: job for job in jobs}
    status = (
        dg.DefaultScheduleStatus.RUNNING
        if pipeline.settings.automation_running
        else dg.DefaultScheduleStatus.STOPPED
    )
    hour = pipeline.settings.retrain_schedule_hour
    scheduled = RetrainDecision(True, (Reason(Cause.SCHEDULE, f"every period at {hour}:00"),))
    return [
        # one run per period, for the period that just ended, shortly after it ended
        dg.build_schedule_from_partitioned_job(
            by_name[monitoring_job_name(pipeline.name)],
            name=f"{pipeline.name}_monitoring_schedule",
            minute_of_hour=15,
            hour_of_day=0,
            default_status=status,
        ),
        dg.build_schedule_from_partitioned_job(
            by_name[retraining_job_name(pipeline.name)],
            name=f"{pipeline.name}_retraining_schedule",
            minute_of_hour=0,
            hour_of_day=hour,
            default_status=status,
            tags=scheduled.tags(),
        ),
    ]
