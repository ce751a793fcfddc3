"""How a large training window is read: the holdout whole, the rest a time-stratified sample.

Above ``RETRAIN_TRAINING_MAX_ROWS`` records a window is not loaded whole. Its holdout (the
newest records, sized on the whole window as ``split_by_time`` sizes it) is read intact: a
candidate is judged on every one of the newest records, as the champion is. The records
before it are read as the seeded sample of ``core.sampling`` over their time order, sized so
that sample and holdout hold ``RETRAIN_TRAINING_MAX_ROWS`` rows. That sample is stratified by
time at every scale: the Weyl sequence keeps each run of consecutive positions (a day, an
hour) at the sample's share, to within a few rows, which a random draw would not. A database
draws it in SQL and Parquet reads only the sampled rows (``RecordSource.sample``). The seed
comes from the window's bounds, so a re-run of the window trains on the same rows.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from retraining_assets.core.sampling import WindowSample
from retraining_assets.core.sources import RecordSource
from retraining_assets.core.splits import TrainingError, holdout_size

SETTING = "RETRAIN_TRAINING_MAX_ROWS"


@dataclass(frozen=True)
class TrainingSample:
    """What of a training window was read (recorded with each model version)."""

    n_window: int  # records in the whole window
    n_read: int  # rows trained and judged on: the sample before the holdout plus the holdout
    n_holdout: int  # the newest records, never sampled
    seed: int
    max_rows: int  # the cap (0: none)

    @property
    def sampled(self) -> bool:
        return self.n_read < self.n_window

    def to_dict(self) -> dict[str, int | bool]:
        return {**asdict(self), "sampled": self.sampled}


def window_seed(start: datetime, end: datetime) -> int:
    return zlib.crc32(f"training:{start.isoformat()}/{end.isoformat()}".encode())


def read_training_window(
    source: RecordSource,
    start: datetime,
    end: datetime,
    *,
    max_rows: int,
    holdout_records: int | None,
) -> tuple[pd.DataFrame, TrainingSample]:
    """The window ``[start, end)`` in time order, at most ``max_rows`` rows (0: every row)
    with its newest ``holdout_size`` records all present; and what was read. ``TrainingError``
    names the setting when the cap leaves no room beside the holdout."""
    seed = window_seed(start, end)
    n_window = source.count(start, end)
    if not max_rows or n_window <= max_rows:
        frame = source.load(start, end)
        n_holdout = holdout_size(len(frame), holdout_records)
        return frame, TrainingSample(len(frame), len(frame), n_holdout, seed, max_rows)
    n_holdout = holdout_size(n_window, holdout_records)
    boundary = source.newest_time(start, end, n_holdout) if n_holdout else end
    # records at the boundary's time that are not among the newest n_holdout are read whole too
    n_tail = source.count(boundary, end) if boundary is not None else 0
    if boundary is None or n_tail >= max_rows:
        raise TrainingError(
            f"{SETTING}={max_rows} leaves no room for training beside the holdout's {n_tail} "
            f"newest records of {n_window} in {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}: "
            f"raise {SETTING} above it, or lower RETRAIN_HOLDOUT_RECORDS"
        )
    n_before = n_window - n_tail
    room = max_rows - n_tail
    before = source.sample(start, boundary, WindowSample(n_before, room, seed))
    if len(before) > room:  # the hash keeps about ``room``: thin the few extra evenly
        before = before.iloc[np.linspace(0, len(before) - 1, room).round().astype(int)]
    frame = pd.concat([before, source.load(boundary, end)], ignore_index=True)
    return frame, TrainingSample(n_window, len(frame), n_holdout, seed, max_rows)
