"""DuckDB over Parquet/CSV files: out of core under a memory limit, spilling to a folder, and
reading only the period's row groups (the time predicate is pushed into the Parquet scan)."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from retraining_assets.core.engines.dialect import DUCKDB, Dialect
from retraining_assets.core.engines.pushdown import EngineError, Relation
from retraining_assets.core.sources import (
    SourceError,
    _checked_dataset,
    _csv_header,
    _file_key,
    _is_parquet,
    _refuse_repeated,
    _same_columns,
    matching_files,
)

DEFAULT_MEMORY_LIMIT = "384MB"  # DuckDB spills sorts and hash tables to temp_directory above it


def default_spill_folder() -> Path:
    return Path(tempfile.gettempdir()) / "retrain-duckdb-spill"


@dataclass
class DuckDBRunner:
    """One in-process DuckDB database. ``memory_limit`` bounds DuckDB's buffer memory (sorts
    and aggregates beyond it spill to ``temp_directory``); ``threads`` defaults to
    ``OMP_NUM_THREADS`` when set."""

    memory_limit: str = DEFAULT_MEMORY_LIMIT
    temp_directory: Path | None = None
    threads: int | None = None
    batch_rows: int = 1_000_000  # rows per streamed batch of a sorted column
    dialect: Dialect = DUCKDB
    _connection: duckdb.DuckDBPyConnection | None = field(default=None, init=False, repr=False)
    _names: Any = field(default_factory=itertools.count, init=False, repr=False)

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            folder = Path(self.temp_directory or default_spill_folder())
            folder.mkdir(parents=True, exist_ok=True)
            env = os.environ.get("OMP_NUM_THREADS", "")
            threads = self.threads or (int(env) if env.isdigit() and int(env) > 0 else None)
            config = {
                "memory_limit": self.memory_limit,
                "temp_directory": str(folder),
            }
            if threads:
                config["threads"] = str(threads)
            try:
                self._connection = duckdb.connect(config=config)
            except duckdb.Error as error:
                raise EngineError(f"DuckDB refused its settings {config}: {error}") from None
            # insertion order is not needed by any statistic; dropping it lets sorts spill
            self._connection.execute("SET preserve_insertion_order = false")
            self._connection.execute("SET enable_progress_bar = false")  # not in CLI output
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> DuckDBRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _execute(self, sql: str) -> duckdb.DuckDBPyConnection:
        try:
            return self.connection.execute(sql)
        except duckdb.OutOfMemoryException as error:
            raise self._out_of_memory(error) from None
        except duckdb.IOException as error:
            raise EngineError(
                f"DuckDB cannot read the data: {str(error).splitlines()[0]}"
            ) from None

    def _out_of_memory(self, error: Exception) -> EngineError:
        return EngineError(
            f"DuckDB ran out of memory under memory_limit={self.memory_limit!r} with spill "
            f"folder {self.temp_directory or default_spill_folder()} "
            f"({str(error).splitlines()[0]}); raise the memory limit (retrain drift "
            "--memory-limit, DuckDBRunner(memory_limit=...)) or free disk in the spill folder"
        )

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self._execute(sql).fetchall()

    def values(self, sql: str) -> np.ndarray:
        column = next(iter(self._execute(sql).fetchnumpy().values()))
        return np.asarray(column, dtype=np.float64)

    def batches(self, sql: str) -> Iterator[pa.RecordBatch]:
        """The result in record batches of about ``batch_rows`` rows, never all at once."""
        try:  # the relation API streams; a DB-API result would copy every row first
            yield from self.connection.sql(sql).to_arrow_reader(self.batch_rows)
        except duckdb.OutOfMemoryException as error:
            raise self._out_of_memory(error) from None

    def upload(self, values: np.ndarray) -> str:
        name = f"_retrain_values_{next(self._names)}"
        self.connection.register(name, pa.table({"v": np.asarray(values, dtype=np.float64)}))
        return name

    def empty_frame(self, relation: Relation) -> pd.DataFrame:
        """The relation's columns with the dtypes pandas gives them on reading (kinds)."""
        return self._execute(f"SELECT * FROM {relation.sql} LIMIT 0").df()


def _timestamp(value: datetime) -> str:
    return f"TIMESTAMP '{pd.Timestamp(value).isoformat(sep=' ')}'"


def file_relation(
    runner: DuckDBRunner,
    path: str | os.PathLike[str] | list[Path],
    *,
    time_column: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    drop: tuple[str, ...] | list[str] = (),
) -> Relation:
    """A Parquet or CSV file, glob or list of files as a DuckDB relation, optionally the window
    ``[start, end)`` of ``time_column``. Every file must have the first file's columns with
    agreeing types (``SourceError`` names the file otherwise); Parquet row groups outside the
    window are skipped by their min/max statistics."""
    files = path if isinstance(path, list) else matching_files(path)
    names = [str(f) for f in files]
    if all(_is_parquet(f) for f in files):
        dataset = _checked_dataset(_file_key(files))  # names the file that disagrees
        pandas_index = (dataset.schema.pandas_metadata or {}).get("index_columns", [])
        hidden = {c for c in pandas_index if isinstance(c, str)}  # pandas reads them as index
        columns = [c for c in dataset.schema.names if c not in hidden]
        scan = f"read_parquet({names!r}, union_by_name = true)"
    elif all(str(f).lower().endswith((".csv", ".csv.gz")) for f in files):
        columns = _csv_columns(files)
        scan = f"read_csv({names!r}, header = true, union_by_name = true)"
    else:
        raise SourceError(f"'{files[0]}': use .csv, .csv.gz or .parquet files, not a mix")
    terms = []
    if time_column is not None:
        if time_column not in columns:
            raise SourceError(f"'{files[0]}' has no time column '{time_column}'")
        q = runner.dialect.quote(time_column)
        terms += [f"{q} >= {_timestamp(start)}"] if start is not None else []
        terms += [f"{q} < {_timestamp(end)}"] if end is not None else []
    missing = [c for c in drop if c not in columns]
    if missing:
        raise SourceError(f"{path}: columns to drop not found: {missing}")
    kept = [c for c in columns if c not in set(drop)]
    select = ", ".join(runner.dialect.quote(c) for c in kept)
    where = f" WHERE {' AND '.join(terms)}" if terms else ""
    window = f", {start} to {end}" if terms else ""
    return Relation(f"(SELECT {select} FROM {scan}{where}) AS cur", kept, f"{path}{window}")


def _csv_columns(files: list[Path]) -> list[str]:
    headers = []
    for file in files:
        header = [str(h) for h in _csv_header(file)]
        _refuse_repeated(file, header)
        headers.append(header)
    for file, header in zip(files[1:], headers[1:], strict=True):
        _same_columns(files[0], headers[0], file, header)
    return headers[0]
