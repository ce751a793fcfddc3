"""Delayed labels: a record's features are seen at once, its label only ``delay`` after its
timestamp (a loan's default is known a year after it was granted).

``RETRAIN_LABEL_DELAY`` (a duration, ``0`` for none) is parsed here, and every consumer of
labels (the volume trigger, ``champion_performance``, the backtest) asks ``labelled`` /
``label_cutoff`` which records have theirs by a given moment, so none of them re-derives it.
``labels_complete_period`` is the one place that says which monitoring period is the newest
whose labels have all arrived: the period the pipeline's labelled performance trigger reads.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from retraining_assets.core.timescales import Duration, TimeScales

__all__ = [
    "LabelDelay",
    "label_cutoff",
    "labelled",
    "labels_complete_period",
    "parse_label_delay",
]

LabelDelay = Duration | None  # None: labels arrive with their records


def parse_label_delay(text: str | None) -> LabelDelay:
    """``30d``, ``6w``, ``1M``, ``36h``; ``0``, empty or None for no delay."""
    if text is None or str(text).strip() in ("", "0"):
        return None
    return Duration.parse(str(text).strip())


def label_cutoff(now: datetime, delay: LabelDelay) -> datetime:
    """Records stamped at or before this moment have their label at ``now``."""
    return now if delay is None else delay.before(now)


def labelled(frame: pd.DataFrame, time_column: str, now: datetime, delay: LabelDelay) -> pd.Series:
    """Which rows of ``frame`` have their label at ``now`` (a boolean mask on its index)."""
    if delay is None:
        return pd.Series(True, index=frame.index)
    stamps = pd.to_datetime(frame[time_column])
    cutoff = pd.Timestamp(label_cutoff(now, delay))
    if stamps.dt.tz is not None and cutoff.tzinfo is None:
        cutoff = cutoff.tz_localize(stamps.dt.tz)
    elif stamps.dt.tz is None and cutoff.tzinfo is not None:
        cutoff = cutoff.tz_convert(None)
    return stamps <= cutoff


def labels_complete_period(
    scales: TimeScales, now: datetime, delay: LabelDelay, data_start: datetime
) -> datetime | None:
    """The start of the newest monitoring period whose every label has arrived by ``now``:
    the newest period that ended at or before ``now - delay`` (a period ending exactly then
    counts: its records are all stamped before its end). Without a delay, the newest
    complete period. None before the first such period."""
    return scales.newest_complete_period(label_cutoff(now, delay), data_start)
