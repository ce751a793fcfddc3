"""RecordSource: where a pipeline's labelled records live.

Two backends: a SQL table through SQLAlchemy, and CSV/Parquet files (one path or a glob).
Windows are half-open ``[start, end)`` in naive UTC; every backend pushes the window down
(a SQL ``WHERE`` on the time column, pyarrow filters on Parquet) instead of loading the table.
"""

from __future__ import annotations

import glob
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import sqlalchemy as sa
from pandas.api import types as ptypes

from retraining_assets.core.database import check_connection, make_engine, mask_url
from retraining_assets.core.dataset import is_numeric_dtype, parse_timestamps
from retraining_assets.core.sampling import MODULUS, MULTIPLIER, WindowSample


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

    def sample(self, start: datetime, end: datetime, sample: WindowSample) -> pd.DataFrame:
        """The ``sample`` of the window ``[start, end)``, in time order (``core.sampling``).
        This default reads the window and keeps the sample; a database draws it itself."""
        return sample.take(self.load(start, end))

    @abstractmethod
    def count(self, start: datetime | None = None, end: datetime | None = None) -> int:
        """How many records fall in ``[start, end)`` (open ends when None), cheaply."""

    def newest_time(self, start: datetime, end: datetime, rank: int) -> datetime | None:
        """The time of the ``rank``-th newest record (1: the newest) of ``[start, end)``, or
        None when it holds fewer: where a training window's holdout begins. This default
        reads the window; a database and Parquet read only the time column."""
        times = self.load(start, end)[self.time_column]
        return None if len(times) < rank else pd.Timestamp(times.iloc[-rank]).to_pydatetime()

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
        return self._read(self.query(start, end))

    def sample(self, start: datetime, end: datetime, sample: WindowSample) -> pd.DataFrame:
        """The sample drawn by the database: ``ROW_NUMBER()`` over the window's time order,
        kept by the same integer hash as ``WindowSample.keeps``; only the sample is read."""
        if sample.everything:
            return self.load(start, end)
        table = self._table()
        time = table.c[self.time_column]
        position = sa.func.row_number().over(order_by=[time, *table.primary_key.columns]) - 1
        numbered = (
            sa.select(table, position.label("_position"))
            .where(*self._window(table, start, end))
            .subquery()
        )
        hashed = (numbered.c._position * MULTIPLIER + sample.seed) % MODULUS
        query = (
            sa.select(*(numbered.c[column.name] for column in table.c))
            .where(hashed < sample.threshold)
            .order_by(numbered.c._position)
        )
        return self._read(query)

    def newest_time(self, start: datetime, end: datetime, rank: int) -> datetime | None:
        table = self._table()
        column = table.c[self.time_column]
        query = (
            sa.select(column)
            .where(*self._window(table, start, end))
            .order_by(column.desc())
            .offset(rank - 1)
            .limit(1)
        )
        with make_engine(self.url).connect() as connection:
            found = connection.execute(query).scalar_one_or_none()
        return None if found is None else parse_timestamps(pd.Series([found]))[0].to_pydatetime()

    def _read(self, query: sa.Select) -> pd.DataFrame:
        table = self._table()
        with make_engine(self.url).connect() as connection:
            frame = pd.read_sql(query, connection)
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
    once per process and kept in memory; use Parquet or SQL for large tables. Every file of a
    glob must have the columns of the first, with types that agree (``SourceError`` names the
    file and column otherwise).
    """

    path: str
    time_column: str

    @property
    def description(self) -> str:
        return f"files '{self.path}'"

    def files(self) -> list[Path]:
        return matching_files(self.path)

    def load(self, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        if self._parquet() is None:
            frame = self._csv()
            frame = frame[self._csv_mask(frame, start, end)]
        else:
            frame = self._read_parquet(filter=self._parquet_filter(start, end)).to_pandas()
            frame[self.time_column] = parse_timestamps(frame[self.time_column])
        return frame.sort_values(self.time_column, kind="stable").reset_index(drop=True)

    def sample(self, start: datetime, end: datetime, sample: WindowSample) -> pd.DataFrame:
        """Parquet: the window's time column is read to rank its records, then only the
        sampled rows of each batch are kept, so memory holds the sample, not the window (the
        same rows as the default, which sorts the whole window)."""
        if sample.everything or self._parquet() is None:
            return super().sample(start, end, sample)
        condition = self._parquet_filter(start, end)
        times = self._window_times(condition)
        # files written in time order (the usual case) need no sort: rank = scan position
        in_order = len(times) < 2 or bool((times[1:] >= times[:-1]).all())
        order = None if in_order else np.argsort(times, kind="stable")
        kept = np.zeros(len(times), dtype=bool)
        # by scan position; in chunks, so the hash's temporaries stay small on a large window
        for first in range(0, len(times), KEEP_CHUNK):
            positions = np.arange(first, min(first + KEEP_CHUNK, len(times)))
            chosen = positions if order is None else order[positions]
            kept[chosen[sample.keeps(positions)]] = True
        del times, order
        pieces, offset = [], 0
        try:  # the scan order of to_batches is to_table's: positions line up
            for batch in self._parquet().to_batches(filter=condition, **BOUNDED_SCAN):
                mask = kept[offset : offset + batch.num_rows]
                offset += batch.num_rows
                pieces.append(batch.filter(pa.array(mask)))
        except (pa.ArrowInvalid, OSError) as error:
            raise SourceError(
                f"cannot read Parquet {self.description}: {_first_line(error)}"
            ) from None
        if offset != len(kept):  # the files changed between the two scans
            raise SourceError(f"{self.description} changed while the sample was read: retry")
        frame = pa.Table.from_batches(pieces, schema=self._parquet().schema).to_pandas()
        frame[self.time_column] = parse_timestamps(frame[self.time_column])
        return frame.sort_values(self.time_column, kind="stable").reset_index(drop=True)

    def newest_time(self, start: datetime, end: datetime, rank: int) -> datetime | None:
        if self._parquet() is None:
            return super().newest_time(start, end, rank)
        times = self._window_times(self._parquet_filter(start, end))
        if len(times) < rank:
            return None
        return pd.Timestamp(
            np.partition(times, len(times) - rank)[len(times) - rank]
        ).to_pydatetime()

    def _window_times(self, condition: ds.Expression | None) -> np.ndarray:
        column = self._read_parquet(columns=[self.time_column], filter=condition).column(0)
        if pa.types.is_timestamp(column.type) and column.null_count == 0:
            # Arrow holds UTC instants (or naive times) as int64: already what parse_timestamps
            # returns (naive UTC), without its two full-size pandas copies
            unit = column.type.unit
            return column.cast(pa.int64()).to_numpy().view(f"datetime64[{unit}]")
        return parse_timestamps(column.to_pandas()).to_numpy()

    def parquet_dataset(self) -> ds.Dataset | None:
        """The files as one pyarrow dataset (None for CSV files)."""
        return self._parquet()

    def window_filter(self, start: datetime | None, end: datetime | None) -> ds.Expression | None:
        """``[start, end)`` as a pyarrow filter on the time column (Parquet only)."""
        return self._parquet_filter(start, end)

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
        if not all(_is_parquet(path) for path in files):
            return None
        dataset = _checked_dataset(_file_key(files))
        if self.time_column not in dataset.schema.names:
            raise SourceError(
                f"{self.description} have no time column '{self.time_column}' "
                f"(columns: {', '.join(dataset.schema.names)})"
            )
        return dataset

    def _read_parquet(self, **options: object) -> pa.Table:
        try:
            return self._parquet().to_table(**options)
        except (pa.ArrowInvalid, OSError) as error:
            raise SourceError(
                f"cannot read Parquet {self.description}: {_first_line(error)}"
            ) from None

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
        key = _file_key(files)
        if key not in _CSV_CACHE:
            frame = _concat_agreeing(files, self._read_csv)
            _CSV_CACHE.clear()  # one file set in memory, not every one ever read
            _CSV_CACHE[key] = frame.sort_values(self.time_column, kind="stable")
        return _CSV_CACHE[key]

    def _read_csv(self, path: Path) -> pd.DataFrame:
        frame = _read_file(path)
        if self.time_column not in frame.columns:
            raise SourceError(
                f"'{path}' has no time column '{self.time_column}' "
                f"(columns: {', '.join(map(str, frame.columns))})"
            )
        try:
            frame[self.time_column] = parse_timestamps(frame[self.time_column])
        except (ValueError, TypeError) as error:
            raise SourceError(
                f"'{path}': column '{self.time_column}' has unparseable timestamps ({error})"
            ) from None
        return frame


_CSV_CACHE: dict[tuple, pd.DataFrame] = {}
# A scan that keeps a sample of each batch holds a few batches, not pyarrow's default read
# of whole files ahead (pre_buffer) and 16 batches of 4 files: 75 MB of Arrow memory instead
# of 434 MB on a 2M-row, 13-column period (benchmarks/scale_benchmark_io.py)
BOUNDED_SCAN = {
    "batch_size": 65_536,
    "batch_readahead": 1,
    "fragment_readahead": 1,
    "fragment_scan_options": ds.ParquetFragmentScanOptions(pre_buffer=False),
}
KEEP_CHUNK = 1 << 20  # positions hashed at a time when a large window is sampled
FileKey = tuple[tuple[str, int, int], ...]  # (path, mtime_ns, size) of each file


# --- reading files -------------------------------------------------------------------------
def matching_files(path: str | Path) -> list[Path]:
    """The files of one path or a glob, sorted; ``SourceError`` when one is missing or a glob
    matches nothing."""
    pattern = str(path)
    matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    missing = [match for match in matches if not Path(match).is_file()]
    if not matches or missing:
        found = "file not found" if missing else "no file matches"
        raise SourceError(f"no readable file at '{missing[0] if missing else pattern}' ({found})")
    return [Path(match) for match in matches]


def read_table(path: str | Path) -> pd.DataFrame:
    """A whole CSV (gzip too) or Parquet file, or a glob of them, as it is, nothing parsed:
    for validation and the CLI. Raises ``SourceError`` naming the file when it is missing or
    unreadable, repeats a column name, or (in a glob) differs from the first file in its
    columns or their types; never renames a column nor casts one with loss."""
    files = matching_files(path)
    if len(files) > 1 and all(_is_parquet(file) for file in files):
        try:
            return _checked_dataset(_file_key(files)).to_table().to_pandas()
        except (pa.ArrowInvalid, OSError) as error:
            raise SourceError(f"cannot read Parquet files '{path}': {_first_line(error)}") from None
    return _concat_agreeing(files, _read_file)


def _read_file(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    try:
        if _is_parquet(path):
            _parquet_schema(path)  # refuses a repeated name before pyarrow fails on it
            frame = pd.read_parquet(path)
        elif name.endswith((".csv", ".csv.gz")):
            _refuse_repeated(path, _csv_header(path))  # pandas would rename x to x.1
            frame = pd.read_csv(path)
        else:
            raise SourceError(f"unsupported file type '{path.name}': use .csv, .csv.gz or .parquet")
    except (OSError, ValueError, UnicodeDecodeError, EOFError, pa.ArrowInvalid) as error:
        raise SourceError(f"cannot read '{path}': {_first_line(error)}") from None
    _refuse_repeated(path, [str(column) for column in frame.columns])
    return frame


def _csv_header(path: Path) -> list[str]:
    """The header row as written: ``read_csv`` de-duplicates names, this does not."""
    try:
        header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return []
    return header.iloc[0].tolist() if len(header) else []


def _refuse_repeated(path: Path, names: list[str]) -> None:
    repeated = [name for name, count in Counter(names).items() if count > 1 and name != ""]
    if repeated:
        raise SourceError(
            f"'{path}': column '{repeated[0]}' appears {names.count(repeated[0])} times; "
            "column names must be unique"
        )


def _concat_agreeing(files: list[Path], read: Callable[[Path], pd.DataFrame]) -> pd.DataFrame:
    """The files read and concatenated, once each has the first file's columns and no column
    holds numbers in one file and text or times in another (``pd.concat`` would fill a renamed
    column with nulls and silently mix the types)."""
    frames = [read(path) for path in files]
    first, head = files[0], frames[0]
    for path, frame in zip(files[1:], frames[1:], strict=True):
        _same_columns(first, list(head.columns), path, list(frame.columns))
        for column in head.columns:
            kinds = _value_kind(head[column]), _value_kind(frame[column])
            if None not in kinds and kinds[0] != kinds[1]:
                raise SourceError(
                    f"'{path}': column '{column}' holds {kinds[1]}, but {kinds[0]} in '{first}'"
                )
    return head if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _value_kind(values: pd.Series) -> str | None:
    """What a CSV column holds as far as a glob's files must agree (None: only nulls)."""
    if values.isna().all():
        return None
    if ptypes.is_datetime64_any_dtype(values):
        return "timestamps"
    return "numbers" if is_numeric_dtype(values) else "text"


def _same_columns(first: Path, expected: list, path: Path, found: list) -> None:
    missing = [str(name) for name in expected if name not in found]
    extra = [str(name) for name in found if name not in expected]
    if missing or extra:
        detail = [f"no column '{missing[0]}'"] if missing else []
        detail += [f"an extra column '{extra[0]}'"] if extra else []
        raise SourceError(
            f"'{path}' has {' and '.join(detail)} (columns must match those of '{first}')"
        )


def _first_line(error: Exception) -> str:
    """pyarrow's messages go on to print whole schemas: the first line says what failed."""
    return str(error).strip().split("\n", 1)[0]


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith((".parquet", ".pq"))


def _file_key(files: list[Path]) -> FileKey:
    def stamp(path: Path) -> tuple[str, int, int]:
        stat = path.stat()
        return str(path), stat.st_mtime_ns, stat.st_size

    return tuple(stamp(path) for path in files)


@lru_cache(maxsize=8)
def _checked_dataset(key: FileKey) -> ds.Dataset:
    """One pyarrow dataset over Parquet files whose columns match and whose types widen without
    loss (int to float, string to large string, null to any): their unified schema, for every
    file. pyarrow alone would read them all with the first file's schema, filling a renamed
    column with nulls and casting strings to floats. Cached per file set (names, times, sizes),
    so a source's load, count and filter share one check."""
    files = [Path(name) for name, *_ in key]
    schemas = [_parquet_schema(path) for path in files]
    first, unified = files[0], schemas[0]
    origin = dict.fromkeys(unified.names, first)  # the file whose type each column has
    for path, schema in zip(files[1:], schemas[1:], strict=True):
        _same_columns(first, unified.names, path, schema.names)
        fields = []
        for before in unified:
            field_ = schema.field(before.name)
            try:
                widened = pa.unify_schemas(
                    [pa.schema([before]), pa.schema([field_])], promote_options="permissive"
                ).field(0)
            except (pa.ArrowTypeError, pa.ArrowInvalid):
                raise SourceError(
                    f"'{path}': column '{before.name}' is {field_.type}, but {before.type} in "
                    f"'{origin[before.name]}'"
                ) from None
            if widened.type != before.type:
                origin[before.name] = path
            fields.append(widened)
        unified = pa.schema(fields, metadata=unified.metadata)
    try:
        return ds.dataset([str(path) for path in files], schema=unified, format="parquet")
    except (pa.ArrowInvalid, OSError) as error:
        raise SourceError(
            f"cannot read Parquet files '{first.parent}': {_first_line(error)}"
        ) from None


def _parquet_schema(path: Path) -> pa.Schema:
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise SourceError(f"cannot read Parquet '{path}': {_first_line(error)}") from None
    _refuse_repeated(path, schema.names)
    return schema


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
