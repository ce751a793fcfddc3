"""Drift between two files: reading them (``core.sources.read_table``) is kept out of the
statistics engine, which only ever sees frames."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from retraining_assets.core.drift.columns import DriftInputError
from retraining_assets.core.drift.detect import detect_drift
from retraining_assets.core.drift.report import DriftReport
from retraining_assets.core.sources import read_table


def drift_between_files(
    reference_path: str | os.PathLike[str],
    current_path: str | os.PathLike[str],
    *,
    drop: Sequence[str] = (),
    **options: Any,
) -> DriftReport:
    """``detect_drift`` on two files (CSV, CSV.gz or Parquet) without the ``drop`` columns
    (ids, timestamps); ``options`` as for ``detect_drift``. Unreadable files raise
    ``SourceError`` naming the file."""
    frames = [read_table(path) for path in (reference_path, current_path)]
    for frame, path in zip(frames, (reference_path, current_path), strict=True):
        missing = [column for column in drop if column not in frame.columns]
        if missing:
            raise DriftInputError(f"{path}: columns to drop not found: {missing}")
    reference, current = (frame.drop(columns=list(drop)) for frame in frames)
    return detect_drift(reference, current, **options)
