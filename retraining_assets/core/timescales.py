"""The four time scales, and the one place that turns them into windows.

- the **monitoring period** (``period``): the partition of the data and monitoring assets;
- the **drift window**: the trailing ``drift_window`` periods compared with the reference,
  widened one period at a time until it holds ``drift_min_records`` records;
- the **training window**: a ``Duration`` ending at the end of the period that triggered a run;
- the **retraining schedule**: a calendar of its own (``monthly`` by default, or a cron string).

Every consumer (assets, sensors, schedules, the backtest) asks ``TimeScales``; none does its own
date arithmetic. Datetimes are naive UTC, as the record sources store them. Periods follow
Dagster's time-window partitions: hours, days at midnight, weeks starting on Sunday
(``WeeklyPartitionsDefinition``'s default ``day_offset=0``) and calendar months.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

import pandas as pd
from croniter import croniter

from retraining_assets.core.sampling import WindowSample

Period = Literal["hourly", "daily", "weekly", "monthly"]
PERIODS: tuple[Period, ...] = get_args(Period)
PERIOD_NAMES: dict[str, Period] = {
    "hour": "hourly",
    "day": "daily",
    "week": "weekly",
    "month": "monthly",
}
"""The user-facing names of the CLI (``--period day``) and the period each one means."""
PERIOD_WORDS: dict[Period, str] = {period: word for word, period in PERIOD_NAMES.items()}
"""The other way round: ``"weekly"`` -> ``"week"`` (a backtest's ``settings``)."""

STEPS: dict[Period, pd.DateOffset] = {
    "hourly": pd.DateOffset(hours=1),
    "daily": pd.DateOffset(days=1),
    "weekly": pd.DateOffset(weeks=1),
    "monthly": pd.DateOffset(months=1),
}
SHORTEST: dict[Period, timedelta] = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=28),
}
DEFAULT_DRIFT_WINDOW: dict[Period, int] = {"hourly": 24, "daily": 7, "weekly": 1, "monthly": 1}
"""Trailing periods compared with the reference when not set: a day of hours, a week of days."""
NAMED_SCHEDULES = ("monthly", "weekly", "daily", "none")
Count = Callable[[datetime, datetime], int]
"""Records with a timestamp in ``[start, end)``: a SQL ``COUNT`` or a Parquet scan, kept cheap."""


class TimeScaleError(ValueError):
    """A time-scale setting is invalid; ``setting`` names it (the settings add the variable)."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(problem)
        self.setting = setting
        self.problem = problem


_DURATION = re.compile(r"^\s*(\d+)\s*([hdwM])\s*$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks", "M": "months"}


@dataclass(frozen=True)
class Duration:
    """A span of calendar time: ``36h``, ``90d``, ``12w`` or ``3M`` (calendar months)."""

    count: int
    unit: Literal["h", "d", "w", "M"]

    @classmethod
    def parse(cls, text: str | int) -> Duration:
        if isinstance(text, int) or str(text).strip().isdigit():
            raise ValueError(
                f"{str(text).strip()!r} is a bare number: the training window used to count "
                "monitoring periods and is now a duration with a unit, e.g. 90d, 12w, 3M or 36h"
            )
        match = _DURATION.match(str(text))
        if not match or int(match.group(1)) == 0:
            raise ValueError(
                f"{text!r} is not a duration: a positive whole number and a unit, "
                "h (hours), d (days), w (weeks) or M (months), e.g. 90d"
            )
        return cls(int(match.group(1)), match.group(2))  # type: ignore[arg-type]

    @property
    def offset(self) -> pd.DateOffset:
        return pd.DateOffset(**{_UNITS[self.unit]: self.count})

    def before(self, end: datetime) -> datetime:
        """The start of the span that ends at ``end`` (month arithmetic clips to month ends)."""
        return (pd.Timestamp(end) - self.offset).to_pydatetime()

    def after(self, start: datetime) -> datetime:
        return (pd.Timestamp(start) + self.offset).to_pydatetime()

    def timedelta(self) -> timedelta:
        """The length as a ``timedelta`` (a month counts as an average 30.44 days)."""
        days = {"h": 1 / 24, "d": 1.0, "w": 7.0, "M": 30.436875}[self.unit]
        return timedelta(days=self.count * days)

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


@dataclass(frozen=True)
class TimeScales:
    """The monitoring period, the drift window, the training window and the schedule."""

    period: Period = "daily"
    drift_window: int = 7  # monitoring periods
    drift_min_records: int = 500
    drift_max_records: int = 100_000  # 0: every record of the window
    training_window: Duration = Duration(90, "d")
    schedule: str = "monthly"  # monthly | weekly | daily | none | a cron string
    schedule_hour: int = 3  # UTC hour of the named schedules

    # --- periods -------------------------------------------------------------------------
    def period_start(self, moment: datetime) -> datetime:
        """The start of the period holding ``moment`` (the floor)."""
        moment = pd.Timestamp(moment).to_pydatetime()
        if self.period == "hourly":
            return moment.replace(minute=0, second=0, microsecond=0)
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.period == "daily":
            return day
        if self.period == "weekly":  # Python's Monday is 0: days since the last Sunday
            return day - timedelta(days=(day.weekday() + 1) % 7)
        return day.replace(day=1)

    def period_end(self, start: datetime) -> datetime:
        return self.shift(start, 1)

    def shift(self, start: datetime, periods: int) -> datetime:
        """The period start ``periods`` periods after (negative: before) ``start``."""
        return (pd.Timestamp(start) + STEPS[self.period] * periods).to_pydatetime()

    def periods(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """The starts of the periods overlapping ``[start, end)``, in order."""
        current = self.period_start(start)
        while current < end:
            yield current
            current = self.period_end(current)

    def label(self, start: datetime) -> str:
        """The period's partition key, as Dagster's time-window partitions spell it."""
        return start.strftime(self._label_format())

    def period_of(self, label: str) -> datetime:
        """The start of the period a partition key names (``label``'s inverse)."""
        return datetime.strptime(label, self._label_format())

    def _label_format(self) -> str:
        return "%Y-%m-%d-%H:%M" if self.period == "hourly" else "%Y-%m-%d"

    def newest_complete_period(self, now: datetime, data_start: datetime) -> datetime | None:
        """The start of the newest period that has ended by ``now``; None before the first."""
        newest = self.shift(self.period_start(now), -1)
        return newest if newest >= self.period_start(data_start) else None

    # --- windows -------------------------------------------------------------------------
    def drift_window_of(
        self, period_start: datetime, count: Count, data_start: datetime
    ) -> tuple[datetime, datetime]:
        """The trailing ``drift_window`` periods ending with this period's end, widened one
        period at a time until ``count(start, end) >= drift_min_records`` or the data start
        is reached (so a quiet day is not judged on 40 rows)."""
        end = self.period_end(period_start)
        first = self.period_start(data_start)
        start = max(self.shift(period_start, 1 - self.drift_window), first)
        while start > first and count(start, end) < self.drift_min_records:
            start = self.shift(start, -1)
        return start, end

    def drift_sample(self, n_window: int, period_key: str) -> WindowSample:
        """About ``drift_max_records`` of a drift window's ``n_window`` records, spread over
        the whole window (``core.sampling``), seeded by the period's key."""
        return WindowSample.of(n_window, self.drift_max_records, period_key)

    def training_window_of(
        self, period_start: datetime, data_start: datetime | None = None
    ) -> tuple[datetime, datetime]:
        """``training_window`` ending at this period's end, clipped at the data start."""
        end = self.period_end(period_start)
        start = self.training_window.before(end)
        if data_start is not None:
            start = max(start, pd.Timestamp(data_start).to_pydatetime())
        return start, end

    def can_train(self, period_start: datetime, data_start: datetime) -> bool:
        """Whether a whole training window ends with this period (none is cut by the data
        start): the first training waits for a full window."""
        start = self.training_window.before(self.period_end(period_start))
        return start >= self.period_start(data_start)

    def first_training_period(self, data_start: datetime) -> datetime:
        """The first period whose training window is whole."""
        candidate = self.shift(self.period_start(self.training_window.after(data_start)), -1)
        candidate = max(candidate, self.period_start(data_start))
        while not self.can_train(candidate, data_start):
            candidate = self.period_end(candidate)
        while candidate > data_start and self.can_train(self.shift(candidate, -1), data_start):
            candidate = self.shift(candidate, -1)
        return candidate

    def first_training_window(self, data_start: datetime) -> tuple[datetime, datetime]:
        """The first whole training window: the drift reference before the first champion."""
        return self.training_window_of(self.first_training_period(data_start), data_start)

    def training_periods(self) -> int:
        """The most periods a training window can overlap (to size a partition mapping)."""
        longest = self.training_window.after(datetime(2000, 1, 31)) - datetime(2000, 1, 31)
        return -(-longest // SHORTEST[self.period])  # windows end at a period boundary

    # --- the retraining schedule ---------------------------------------------------------
    def schedule_cron(self) -> str | None:
        """The schedule as a cron string (UTC), or None for ``none``."""
        hour = self.schedule_hour
        named = {
            "monthly": f"0 {hour} 1 * *",
            "weekly": f"0 {hour} * * 0",  # the start of a week, as the weekly periods
            "daily": f"0 {hour} * * *",
            "none": None,
        }
        return named[self.schedule] if self.schedule in named else self.schedule.strip()

    def schedule_ticks(self, after: datetime, until: datetime) -> list[datetime]:
        """The schedule's ticks in ``(after, until]``, in order (none for ``none``)."""
        cron = self.schedule_cron()
        if cron is None:
            return []
        ticks, moments = croniter(cron, after), []
        while (moment := ticks.get_next(datetime)) <= until:
            moments.append(moment)
        return moments

    def schedule_due(self, prev_end: datetime, end: datetime) -> bool:
        """Whether a tick of the schedule falls in ``(prev_end, end]``."""
        cron = self.schedule_cron()
        if cron is None:
            return False
        return croniter(cron, prev_end).get_next(datetime) <= end

    def validate(self) -> TimeScales:
        """Raise ``TimeScaleError`` naming the setting when the scales do not fit together."""
        if self.period not in PERIODS:
            raise TimeScaleError("partition", f"{self.period!r} is not one of {list(PERIODS)}")
        if self.drift_window < 1:
            raise TimeScaleError("drift_window", "must be at least 1 monitoring period")
        if 0 < self.drift_max_records < self.drift_min_records:
            raise TimeScaleError(
                "drift_max_records",
                f"{self.drift_max_records} is below drift_min_records ({self.drift_min_records})",
            )
        end = datetime(2000, 1, 1)  # a boundary of every period
        if self.training_window.before(end) > self.shift(end, -self.drift_window):
            raise TimeScaleError(
                "training_window",
                f"{self.training_window} is shorter than the drift window "
                f"({self.drift_window} {self.period} periods)",
            )
        cron = self.schedule_cron()
        if cron is None:
            return self
        if self.schedule not in NAMED_SCHEDULES and (
            len(cron.split()) != 5 or not croniter.is_valid(cron)
        ):
            raise TimeScaleError(
                "retrain_schedule",
                f"{cron!r} is neither monthly, weekly, daily, none nor a 5-field cron string",
            )
        ticks = croniter(cron, datetime(2000, 1, 1))
        times = [ticks.get_next(datetime) for _ in range(60)]
        shortest = min(later - earlier for earlier, later in itertools.pairwise(times))
        if shortest < SHORTEST[self.period]:
            raise TimeScaleError(
                "partition",
                f"the monitoring period {self.period!r} is coarser than the retraining "
                f"schedule {self.schedule!r}: the schedule would train twice on one period",
            )
        return self
