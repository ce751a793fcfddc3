"""What ``current_data`` stores for a period too large to copy: where its records are and what
validating them found, not the records.

Above ``RETRAIN_MATERIALIZE_MAX_ROWS`` a period is validated in full by the database that holds
it (Great Expectations' SQL datasource, ``engines/gx_sql.py``), or for files on a seeded sample
(the one ``core.sampling`` draws), and described by its row count, the query or the Parquet
files and row groups that hold it, how many records the checks covered, and column statistics
of the seeded sample. The downstream assets read their own window from the source anyway, so
no period passes through the IO manager. JSON-safe: the IO manager stores it as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from retraining_assets.core.database import make_engine
from retraining_assets.core.sources import FileRecordSource, RecordSource, SqlRecordSource
from retraining_assets.core.validation import CheckOutcome


@dataclass(frozen=True)
class ParquetPart:
    """One file of a period and the row groups whose time statistics overlap it."""

    path: str
    row_groups: list[int]


@dataclass(frozen=True)
class PeriodDescription:
    """A validated period, described instead of copied."""

    partition: str
    start: str  # ISO 8601, naive UTC, inclusive
    end: str  # exclusive
    rows: int
    source: str  # where the records are (passwords masked)
    validated_rows: int  # the records the checks covered: all in a database, else the sample
    query: str | None = None  # SQL sources: the period's SELECT
    files: list[ParquetPart] = field(default_factory=list)  # Parquet sources
    checks: dict[str, bool] = field(default_factory=dict)  # check name -> passed
    statistics: dict[str, dict[str, Any]] = field(default_factory=dict)  # per column
    sample_rows: int | None = None  # the seeded sample the statistics were computed on

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PeriodDescription:
        files = [ParquetPart(**part) for part in data.get("files", [])]
        return cls(**{**data, "files": files})


def describe_period(
    source: RecordSource,
    partition: str,
    start: datetime,
    end: datetime,
    rows: int,
    sample: pd.DataFrame,
    outcomes: list[CheckOutcome],
    validated_rows: int | None = None,
) -> PeriodDescription:
    """The description of ``[start, end)``: ``rows`` records whose checks gave ``outcomes``
    over ``validated_rows`` of them (default: the sample's), statistics from ``sample``."""
    query = files = None
    if isinstance(source, SqlRecordSource):
        dialect = make_engine(source.url).dialect  # the database's own SQL, values inline
        query = str(
            source.query(start, end).compile(
                dialect=dialect, compile_kwargs={"literal_binds": True}
            )
        )
    if isinstance(source, FileRecordSource):
        files = parquet_parts(source, start, end)
    return PeriodDescription(
        partition=partition,
        start=start.isoformat(),
        end=end.isoformat(),
        rows=rows,
        source=source.description,
        validated_rows=len(sample) if validated_rows is None else validated_rows,
        query=query,
        files=files or [],
        checks={outcome.name: outcome.passed for outcome in outcomes},
        statistics=column_statistics(sample),
        sample_rows=len(sample),
    )


def parquet_parts(source: FileRecordSource, start: datetime, end: datetime) -> list[ParquetPart]:
    """The Parquet files of ``source`` holding records of ``[start, end)``, with the row
    groups pyarrow's statistics cannot rule out (empty for CSV files)."""
    dataset = source.parquet_dataset()
    if dataset is None:
        return []
    condition = source.window_filter(start, end)
    parts = []
    for fragment in dataset.get_fragments():
        groups = [piece.row_groups[0].id for piece in fragment.split_by_row_group(condition)]
        if groups:
            parts.append(ParquetPart(path=fragment.path, row_groups=groups))
    return parts


def column_statistics(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per column: dtype, null share and (numbers) min, max, mean, or (others) distinct count."""
    statistics: dict[str, dict[str, Any]] = {}
    for name in frame.columns:
        values = frame[name]
        entry: dict[str, Any] = {
            "dtype": str(values.dtype),
            "null_share": float(values.isna().mean()) if len(values) else 0.0,
        }
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            present = values.dropna().astype(float)
            entry |= (
                {"min": float(present.min()), "max": float(present.max())}
                | {"mean": float(present.mean())}
                if len(present)
                else {}
            )
        elif pd.api.types.is_datetime64_any_dtype(values):
            present = values.dropna()
            if len(present):
                entry |= {"min": str(present.min()), "max": str(present.max())}
        else:
            entry["distinct"] = int(values.nunique())
        statistics[str(name)] = entry
    return statistics
