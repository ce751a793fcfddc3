"""Delayed labels: a record's features are seen at once, its label only ``delay`` after its
timestamp (a loan's default is known a year after it was granted).

``RETRAIN_LABEL_DELAY`` (a duration, ``0`` for none) is parsed here, and every consumer of
labels (the volume trigger, ``champion_performance``, the backtest) asks ``labelled`` /
``label_cutoff`` which records have theirs by a given moment, so none of them re-derives it.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from retraining_assets.core.timescales import Duration

__all__ = ["LabelDelay", "label_cutoff", "labelled", "parse_label_delay"]

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
