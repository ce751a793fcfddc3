"""Drift bands calibrated on the reference's own normal variation.

A statistic that moves by 0.3 PSI between two ordinary months of the training window is no
alarm when it moves by 0.3 next month. ``calibrate`` splits the reference window into its
periods, compares each period with the rest of the window (each-vs-rest: the same sample
sizes a monitoring period meets against the whole window, roughly) and keeps, per feature and
effect size, the largest value seen: the band that statistic moves in when nothing is wrong.
The dataset verdict (``dataset_verdict``) alarms a feature only when its drift leaves the band.

``reference_periods`` is the one rule for cutting a reference into its periods: the pipeline
(``core.reference``) and the backtest (``core.backtest.replay``) both call it, so the same
reference gets the same bands in both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from retraining_assets.core.drift.profile import ReferenceProfile
from retraining_assets.core.drift_thresholds import DriftThresholds
from retraining_assets.core.timescales import TimeScales

STATISTICS = ("psi", "jensen_shannon", "wasserstein")  # the effect sizes a verdict compares
MIN_PERIODS = 2  # each-vs-rest needs a rest
MIN_PERIOD_ROWS = 30  # a smaller period's statistics are mostly noise
DEFAULT_PERIODS = 3  # without usable monitoring periods: this many equal-time periods


class CalibrationError(ValueError):
    """Bands could not be calibrated; the message says why (the verdict reports it)."""


@dataclass(frozen=True)
class CalibrationBands:
    """Per feature and effect size, the largest value seen between reference periods."""

    bands: dict[str, dict[str, float]]
    periods: int  # reference periods the bands come from

    def band(self, feature: str, statistic: str) -> float | None:
        return self.bands.get(feature, {}).get(statistic)

    def to_dict(self) -> dict[str, Any]:
        return {"bands": self.bands, "periods": self.periods}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalibrationBands:
        bands = {str(f): {str(s): float(v) for s, v in b.items()} for f, b in data["bands"].items()}
        return cls(bands, int(data["periods"]))


def calibrate(
    periods: Sequence[pd.DataFrame],
    fit: Callable[[pd.DataFrame], ReferenceProfile],
    thresholds: DriftThresholds | None = None,
) -> CalibrationBands:
    """Bands from each period of ``periods`` compared with the others pooled (``fit`` builds a
    profile as the reference is built). Raises ``CalibrationError`` with fewer than
    ``MIN_PERIODS`` periods of ``MIN_PERIOD_ROWS`` rows."""
    usable = [p for p in periods if len(p) >= MIN_PERIOD_ROWS]
    if len(usable) < MIN_PERIODS:
        raise CalibrationError(
            f"{len(usable)} reference period(s) with at least {MIN_PERIOD_ROWS} rows "
            f"(of {len(periods)}); calibration needs {MIN_PERIODS}"
        )
    bands: dict[str, dict[str, float]] = {}
    for k, period in enumerate(usable):
        rest = pd.concat([p for j, p in enumerate(usable) if j != k], ignore_index=True)
        report = fit(rest).compare(period, thresholds)
        for name, entry in report.features.items():
            seen = bands.setdefault(str(name), {})
            for statistic in STATISTICS:
                value = entry.get(statistic)
                if value is not None and math.isfinite(value):
                    seen[statistic] = max(seen.get(statistic, 0.0), float(value))
    return CalibrationBands(bands, len(usable))


def split_by_time(
    frame: pd.DataFrame, time_column: str, n: int = DEFAULT_PERIODS
) -> list[pd.DataFrame]:
    """``frame`` cut into ``n`` periods of equal duration (empty ones dropped)."""
    times = pd.to_datetime(frame[time_column])
    if frame.empty or n < 1:
        return []
    edges = pd.date_range(times.min(), times.max(), periods=n + 1)
    codes = edges.searchsorted(times, side="right").clip(1, n) - 1
    return [frame[codes == k] for k in range(n) if (codes == k).any()]


def split_by_periods(
    frame: pd.DataFrame, time_column: str, scales: TimeScales
) -> list[pd.DataFrame]:
    """``frame`` cut at the calendar boundaries of the monitoring period, ``drift_window``
    periods at a time (what one drift verdict compares; a window that starts mid-period keeps
    its partial first chunk)."""
    if frame.empty:
        return []
    times = pd.to_datetime(frame[time_column]).to_numpy("datetime64[ns]")  # naive UTC
    first, last = pd.Timestamp(times.min()).floor("us"), pd.Timestamp(times.max()).ceil("us")
    starts = list(scales.periods(first, last + pd.Timedelta(microseconds=1)))
    edges = np.array(starts[:: max(scales.drift_window, 1)], "datetime64[ns]")
    codes = np.searchsorted(edges, times, side="right") - 1
    return [frame[codes == k] for k in range(len(edges)) if (codes == k).any()]


def reference_periods(
    frame: pd.DataFrame, time_column: str, scales: TimeScales | None
) -> list[pd.DataFrame]:
    """The one rule cutting a reference into the periods it is calibrated on: chunks of one
    drift window (``scales.drift_window`` monitoring periods: the sample a verdict really
    compares, so the band has the noise of that sample size) when there are at least
    ``MIN_PERIODS`` of ``MIN_PERIOD_ROWS`` rows; else ``DEFAULT_PERIODS`` equal-time periods
    (a reference shorter than two drift windows, or no time scales known)."""
    if scales is not None:
        periods = split_by_periods(frame, time_column, scales)
        if sum(len(p) >= MIN_PERIOD_ROWS for p in periods) >= MIN_PERIODS:
            return periods
    return split_by_time(frame, time_column, DEFAULT_PERIODS)
