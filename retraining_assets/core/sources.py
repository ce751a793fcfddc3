"""RecordSource: where a pipeline's labelled records live.

Two backends: a SQL table through SQLAlchemy, and CSV/Parquet files (one path or a glob).
Windows are half-open ``[start, end)`` in naive UTC; every backend pushes the window down
(a SQL ``WHERE`` on the time column, pyarrow filters on Parquet) instead of loading the table.
"""

from __future__ import annotations

import glob
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import sqlalchemy as sa

from retraining_assets.core.database import check_connection, make_engine, mask_url
from retraining_assets.core.dataset import parse_timestamps
from retraining_assets.core.sql_frames import read_frame


class SourceError(RuntimeError):
    """A record source cannot be read; the message names the file, table or (masked) URL."""


class RecordSource(ABC):
    """Labelled records with a time column."""

    time_column: str

    @property
    @abstractmethod
    def description(self) -> str:
        """Where the records are, safe to print (passwords masked)."""

    @abstractmethod
    def load(self, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        """Records with ``start <= time < end`` (open ends when None), time column parsed,
        ordered by time."""

    @abstractmethod
    def count(self, start: datetime | None = None, end: datetime | None = None) -> int:
        """How many records fall in ``[start, end)`` (open ends when None), cheaply."""

    @abstractmethod
    def time_range(self) -> tuple[datetime, datetime] | None:
        """The first and last record time, or None when there are no records."""

    def count_since(self, watermark: datetime | None, end: datetime | None = None) -> int:
        """Records newer than ``watermark`` (all when None) and before ``end`` (open when
        None): the volume trigger's signal."""
        if watermark is None:
            return self.count(None, end)
        # strictly after the watermark: a record at exactly the watermark was already seen
        return self.count(watermark + pd.Timedelta(microseconds=1), end)


@dataclass
class SqlRecordSource(RecordSource):
    """A table in any SQLAlchemy database; index the time column for fast windows."""

    url: str
    table: str
    time_column: str
    schema: str | None = None
    _reflected: sa.Table | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def description(self) -> str:
        return f"table '{self.table}' at {mask_url(self.url)}"

    def _table(self) -> sa.Table:
        if self._reflected is None:
            self._reflected = self._reflect()
        return self._reflected

    def _reflect(self) -> sa.Table:
        engine = make_engine(self.url)
        check_connection(engine)
        try:
            table = sa.Table(self.table, sa.MetaData(), autoload_with=engine, schema=self.schema)
        except sa.exc.NoSuchTableError:
            raise SourceError(f"{self.description}: no such table") from None
        if self.time_column not in table.c:
            raise SourceError(f"{self.description}: no time column '{self.time_column}'")
        return table

    def _window(self, table: sa.Table, start: datetime | None, end: datetime | None) -> list:
        column = table.c[self.time_column]
        return [
            *([column >= start] if start is not None else []),
            *([column < end] if end is not None else []),
        ]

    def query(self, start: datetime | None = None, end: datetime | None = None) -> sa.Select:
        """The window as SQL: a ``WHERE`` on the time column, ordered by it."""
        table = self._table()
        query = sa.select(table).where(*self._window(table, start, end))
        return query.order_by(table.c[self.time_column])

    def load(self, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        table = self._table()
        frame = read_frame(self.query(start, end), make_engine(self.url))
        frame = frame.drop(columns=[c for c in ("id",) if c in frame and _is_surrogate(table, c)])
        return frame.assign(**{self.time_column: parse_timestamps(frame[self.time_column])})

    def count(self, start: datetime | None = None, end: datetime | None = None) -> int:
        table = self._table()
        query = (
            sa.select(sa.func.count()).select_from(table).where(*self._window(table, start, end))
        )
        with make_engine(self.url).connect() as connection:
            return int(connection.execute(query).scalar_one())

    def time_range(self) -> tuple[datetime, datetime] | None:
        table = self._table()
        column = table.c[self.time_column]
        with make_engine(self.url).connect() as connection:
            first, last = connection.execute(
                sa.select(sa.func.min(column), sa.func.max(column))
            ).one()
        if first is None:
            return None
        return pd.Timestamp(first).to_pydatetime(), pd.Timestamp(last).to_pydatetime()


def _is_surrogate(table: sa.Table, column: str) -> bool:
    """An integer primary key named ``id`` is bookkeeping, not data."""
    return table.c[column].primary_key


@dataclass
class FileRecordSource(RecordSource):
    """CSV (optionally gzipped) or Parquet files: one path or a glob.

    Parquet windows and counts are pushed into pyarrow as filters (row groups outside the
    window are skipped by their statistics). CSV has no index, so a CSV file set is parsed
    once per process and kept in memory; use Parquet or SQL for large tables.
    """

    path: str
    time_column: str

    @property
    def description(self) -> str:
        return f"files '{self.path}'"

    def files(self) -> list[Path]:
        matches = sorted(glob.glob(self.path)) if glob.has_magic(self.path) else [self.path]
        missing = [match for match in matches if not Path(match).is_file()]
        if not matches or missing:
            raise SourceError(f"no readable file at '{missing[0] if missing else self.path}'")
        return [Path(match) for match in matches]

    def load(self, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        if self._parquet() is None:
            frame = self._csv()
            frame = frame[self._csv_mask(frame, start, end)]
        else:
            frame = self._read_parquet(filter=self._parquet_filter(start, end)).to_pandas()
            frame[self.time_column] = parse_timestamps(frame[self.time_column])
        return frame.sort_values(self.time_column, kind="stable").reset_index(drop=True)

    def count(self, start: datetime | None = None, end: datetime | None = None) -> int:
        dataset = self._parquet()
        if dataset is None:
            return int(self._csv_mask(self._csv(), start, end).sum())
        return dataset.count_rows(filter=self._parquet_filter(start, end))

    def time_range(self) -> tuple[datetime, datetime] | None:
        if self._parquet() is None:
            times = self._csv()[self.time_column]
        else:
            times = parse_timestamps(
                self._read_parquet(columns=[self.time_column]).column(0).to_pandas()
            )
        if times.empty:
            return None
        return times.min().to_pydatetime(), times.max().to_pydatetime()

    # --- Parquet -------------------------------------------------------------------------
    def _parquet(self) -> ds.Dataset | None:
        files = self.files()
        if not all(path.suffix == ".parquet" for path in files):
            return None
        try:
            dataset = ds.dataset([str(path) for path in files], format="parquet")
        except (pa.ArrowInvalid, OSError) as error:
            raise SourceError(f"cannot read Parquet {self.description}: {error}") from None
        if self.time_column not in dataset.schema.names:
            raise SourceError(f"{self.description} have no time column '{self.time_column}'")
        return dataset

    def _read_parquet(self, **options: object) -> pa.Table:
        try:
            return self._parquet().to_table(**options)
        except (pa.ArrowInvalid, OSError) as error:
            raise SourceError(f"cannot read Parquet {self.description}: {error}") from None

    def _parquet_filter(self, start: datetime | None, end: datetime | None) -> ds.Expression | None:
        kind = self._parquet().schema.field(self.time_column).type
        column = ds.field(self.time_column)

        def scalar(bound: datetime) -> pa.Scalar:
            stamp = pd.Timestamp(bound)
            return pa.scalar(stamp.tz_localize("UTC") if getattr(kind, "tz", None) else stamp, kind)

        terms = [column >= scalar(start)] if start is not None else []
        terms += [column < scalar(end)] if end is not None else []
        condition = None
        for term in terms:
            condition = term if condition is None else condition & term
        return condition

    # --- CSV -----------------------------------------------------------------------------
    def _csv_mask(
        self, frame: pd.DataFrame, start: datetime | None, end: datetime | None
    ) -> pd.Series:
        times = frame[self.time_column]
        mask = pd.Series(True, index=frame.index)
        if start is not None:
            mask &= times >= pd.Timestamp(start)
        if end is not None:
            mask &= times < pd.Timestamp(end)
        return mask

    def _csv(self) -> pd.DataFrame:
        files = self.files()
        key = tuple((str(path), path.stat().st_mtime_ns) for path in files)
        if key not in _CSV_CACHE:
            frame = pd.concat([self._read_csv(path) for path in files], ignore_index=True)
            _CSV_CACHE.clear()  # one file set in memory, not every one ever read
            _CSV_CACHE[key] = frame.sort_values(self.time_column, kind="stable")
        return _CSV_CACHE[key]

    def _read_csv(self, path: Path) -> pd.DataFrame:
        frame = read_table(path)
        if self.time_column not in frame.columns:
            raise SourceError(f"'{path}' has no time column '{self.time_column}'")
        try:
            frame[self.time_column] = parse_timestamps(frame[self.time_column])
        except (ValueError, TypeError) as error:
            raise SourceError(
                f"'{path}': column '{self.time_column}' has unparseable timestamps ({error})"
            ) from None
        return frame


_CSV_CACHE: dict[tuple, pd.DataFrame] = {}


def read_table(path: str | Path) -> pd.DataFrame:
    """A whole CSV (gzip too) or Parquet file as it is, nothing parsed: for validation and the
    CLI. Raises ``SourceError`` naming the file when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"no readable file at '{path}' (file not found)")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path)
        raise SourceError(f"unsupported file type '{path.name}': use .csv, .csv.gz or .parquet")
    except (OSError, ValueError, UnicodeDecodeError, EOFError, pa.ArrowInvalid) as error:
        raise SourceError(f"cannot read '{path}': {error}") from None


def open_source(
    time_column: str,
    *,
    url: str | None = None,
    table: str | None = None,
    path: str | None = None,
) -> RecordSource:
    """The backend for a URL + table, or for a path/glob."""
    if url and table:
        return SqlRecordSource(url=url, table=table, time_column=time_column)
    if path:
        return FileRecordSource(path=path, time_column=time_column)
    raise SourceError("a record source needs either a database URL and a table, or a file path")
