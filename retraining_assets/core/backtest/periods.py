"""The labelled history, checked, ordered by time and cut into the monitoring periods."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd

from retraining_assets.core.dataset import DatasetSpec, class_labels, parse_timestamps
from retraining_assets.core.timescales import TimeScales


class BacktestError(ValueError):
    """Data or arguments a backtest cannot run on; the message names the column or period."""


@dataclass(frozen=True)
class Periods:
    """The labelled rows in time order and the consecutive periods over them (empty ones
    included). Windows are row ranges found by binary search on the timestamps."""

    frame: pd.DataFrame
    times: np.ndarray  # datetime64[ns] of ``frame``'s time column
    starts: list[datetime]
    scales: TimeScales

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def labels(self) -> list[str]:
        return [self.scales.label(start) for start in self.starts]

    @property
    def data_start(self) -> datetime:
        return self.starts[0]

    def end(self, index: int) -> datetime:
        return self.scales.period_end(self.starts[index])

    def position(self, moment: datetime) -> int:
        """The number of rows before ``moment``."""
        return int(np.searchsorted(self.times, np.datetime64(moment, "ns"), side="left"))

    def span(self, start: datetime, end: datetime) -> tuple[int, int]:
        """The row range of ``[start, end)``."""
        return self.position(start), self.position(end)

    def count(self, start: datetime, end: datetime) -> int:
        first, last = self.span(start, end)
        return last - first

    def rows(self, start: datetime, end: datetime) -> pd.DataFrame:
        first, last = self.span(start, end)
        return self.frame.iloc[first:last]

    def period(self, index: int) -> pd.DataFrame:
        return self.rows(self.starts[index], self.end(index))


def prepare(
    frame: pd.DataFrame, spec: DatasetSpec, scales: TimeScales, notes: list[str]
) -> tuple[Periods, DatasetSpec]:
    """Check columns and timestamps, order rows by time and cut them into periods."""
    missing = [c for c in (spec.time_column, spec.target, *spec.features) if c not in frame]
    if missing:
        raise BacktestError(f"missing columns {missing} in the data")
    times = _timestamps(frame[spec.time_column], spec.time_column)
    frame = frame.assign(**{spec.time_column: times})
    if not times.is_monotonic_increasing:
        frame = frame.sort_values(spec.time_column, kind="stable", ignore_index=True)
        notes.append(f"rows were not in '{spec.time_column}' order: sorted by it")
    if len(frame) == 0:
        raise BacktestError("the data holds no rows")
    if spec.task != "regression" and not spec.classes:
        spec = replace(spec, classes=class_labels(frame[spec.target]))
    return _cut(frame.reset_index(drop=True), spec, scales, notes), spec


def _timestamps(values: pd.Series, column: str) -> pd.Series:
    nulls = int(values.isna().sum())
    if nulls:
        raise BacktestError(f"time column '{column}' is null in {nulls} rows")
    if pd.api.types.is_datetime64_dtype(values):
        return values
    try:
        return parse_timestamps(values)
    except (ValueError, TypeError) as error:
        raise BacktestError(f"time column '{column}' has unparseable values: {error}") from None


def _cut(frame: pd.DataFrame, spec: DatasetSpec, scales: TimeScales, notes: list[str]) -> Periods:
    times = frame[spec.time_column]
    last = times.iloc[-1].to_pydatetime()
    starts = list(scales.periods(times.iloc[0].to_pydatetime(), scales.period_end(last)))
    starts = [start for start in starts if start <= last]
    bounds = np.searchsorted(
        times.to_numpy(), np.array([*starts, scales.period_end(starts[-1])], "datetime64[ns]")
    )
    labelled = frame[spec.target].notna().to_numpy()
    labelled_before = np.concatenate([[0], np.cumsum(labelled)])
    for start, first, end in zip(starts, bounds[:-1], bounds[1:], strict=True):
        if end > first and labelled_before[end] == labelled_before[first]:
            raise BacktestError(
                f"period {scales.label(start)} has no labels: target '{spec.target}' is null "
                f"in all {end - first} rows"
            )
    unlabelled = int((~labelled).sum())
    if unlabelled:
        notes.append(f"{unlabelled} rows with a null '{spec.target}' were left out (unlabelled)")
        frame = frame[labelled].reset_index(drop=True)
    values = frame[spec.time_column].to_numpy().astype("datetime64[ns]")
    return Periods(frame, values, starts, scales)
