"""Monitoring periods as Dagster partitions, and back.

``core.timescales`` decides every window; this module only spells its periods the way
Dagster's time-window partitions do (and reads a partition back as a naive-UTC period start).
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import pandas as pd

from retraining_assets.core.pipeline import Pipeline

PARTITIONS: dict[str, type[dg.TimeWindowPartitionsDefinition]] = {
    "hourly": dg.HourlyPartitionsDefinition,
    "daily": dg.DailyPartitionsDefinition,
    "weekly": dg.WeeklyPartitionsDefinition,  # weeks start on Sunday, as TimeScales' do
    "monthly": dg.MonthlyPartitionsDefinition,
}


def naive_utc(moment: datetime) -> datetime:
    """Dagster's partition windows are tz-aware; record sources store naive UTC."""
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def partitions_for(pipeline: Pipeline) -> dg.TimeWindowPartitionsDefinition:
    """One partition per monitoring period, from the period holding the first record.
    Complete periods only: the current, still growing period is not a partition yet."""
    scales = pipeline.timescales
    first = scales.label(scales.period_start(pipeline.data_start))
    return PARTITIONS[scales.period](start_date=first, end_offset=0)


def period_start(partitions_def: dg.TimeWindowPartitionsDefinition, partition: str) -> datetime:
    """The naive-UTC start of the period a partition key names."""
    return naive_utc(partitions_def.time_window_for_partition_key(partition).start)


def retraining_target(pipeline: Pipeline, moment: datetime) -> datetime | dg.SkipReason:
    """What a retraining asked for at ``moment`` trains on: the newest complete period by the
    clock (whatever was monitored last), once a whole training window ends with it."""
    target = pipeline.timescales.newest_complete_period(moment, pipeline.data_start)
    if target is None or not pipeline.can_train(target):
        start, end = pipeline.reference_window()
        return dg.SkipReason(
            f"{moment:%Y-%m-%d %H:%M}: the first training window ({start:%Y-%m-%d} to "
            f"{end:%Y-%m-%d}) is not complete yet"
        )
    return target
