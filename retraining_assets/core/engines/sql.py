"""The source database as the engine: SQL run by PostgreSQL (or SQLite) over the period's
``WHERE`` on the time column, through one SQLAlchemy connection (its temporary tables hold
the reference values the KS union needs)."""

from __future__ import annotations

import io
import itertools
import logging
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from retraining_assets.core.database import make_engine, mask_url
from retraining_assets.core.engines.dialect import Dialect, dialect_for
from retraining_assets.core.engines.pushdown import EngineError, Relation
from retraining_assets.core.sources import SqlRecordSource, _is_surrogate

log = logging.getLogger(__name__)


class MissingIndexWarning(UserWarning):
    """The time column has no index: every period's statistics scan the whole table."""


@dataclass
class SqlRunner:
    """One connection to an SQLAlchemy database, kept open for its temporary tables."""

    url: str
    _engine: sa.Engine | None = field(default=None, init=False, repr=False)
    _connection: sa.Connection | None = field(default=None, init=False, repr=False)
    _names: Any = field(default_factory=itertools.count, init=False, repr=False)

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    @property
    def dialect(self) -> Dialect:
        return dialect_for(self.engine.dialect.name)

    @property
    def connection(self) -> sa.Connection:
        if self._connection is None:
            self._connection = self.engine.connect()
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.rollback()  # temporary tables go with the transaction
            self._connection.close()
            self._connection = None

    def __enter__(self) -> SqlRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return [tuple(row) for row in self.connection.exec_driver_sql(sql).fetchall()]
        except sa.exc.DBAPIError as error:
            self.connection.rollback()
            first = str(error.orig).strip().splitlines()[0]
            raise EngineError(
                f"{mask_url(self.url)}: the statistics query failed: {first}"
            ) from None

    def values(self, sql: str) -> np.ndarray:
        return np.array([row[0] for row in self.rows(sql)], dtype=np.float64)

    def upload(self, values: np.ndarray) -> str:
        name = f"_retrain_values_{next(self._names)}"
        d = self.dialect
        self.connection.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} (v {d.double})")
        values = np.asarray(values, dtype=np.float64)
        if self.engine.dialect.name == "postgresql":  # COPY: 2M values in about a second
            text = "\n".join(_copy_text(x) for x in values.tolist())
            cursor = self.connection.connection.dbapi_connection.cursor()
            cursor.copy_expert(f"COPY {name} (v) FROM STDIN", io.StringIO(text + "\n"))
        else:
            self.connection.exec_driver_sql(
                f"INSERT INTO {name} (v) VALUES (?)", [(x,) for x in values.tolist()]
            )
        return name


def _copy_text(x: float) -> str:
    return "Infinity" if x == float("inf") else "-Infinity" if x == float("-inf") else repr(x)


def sql_relation(
    runner: SqlRunner,
    source: SqlRecordSource,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Relation:
    """The window ``[start, end)`` of ``source`` as a subquery, with the columns its frames
    have (without a surrogate ``id``). Warns (``MissingIndexWarning``, and in the log) with
    the ``CREATE INDEX`` statement when no index starts with the time column."""
    table = source._table()
    check_time_index(runner.engine, source)
    columns = [c.name for c in table.c if not (c.name == "id" and _is_surrogate(table, c.name))]
    time = table.c[source.time_column]
    terms = [
        *([time >= start] if start is not None else []),
        *([time < end] if end is not None else []),
    ]
    query = sa.select(*(table.c[c] for c in columns)).where(*terms)
    compiled = query.compile(runner.engine, compile_kwargs={"literal_binds": True})
    window = f", {start} to {end}" if terms else ""
    return Relation(f"({compiled}) AS cur", columns, f"{source.description}{window}")


def check_time_index(engine: sa.Engine, source: SqlRecordSource) -> str | None:
    """The warning given when the time column leads no index (None when one does)."""
    inspector = sa.inspect(engine)
    leading = [
        (index.get("column_names") or [None])[0]
        for index in inspector.get_indexes(source.table, schema=source.schema)
    ]
    primary = inspector.get_pk_constraint(source.table, schema=source.schema)
    leading.append((primary.get("constrained_columns") or [None])[0])
    if source.time_column in leading:
        return None
    quote = engine.dialect.identifier_preparer.quote
    table = (
        quote(source.table)
        if source.schema is None
        else f"{quote(source.schema)}.{quote(source.table)}"
    )
    statement = (
        f"CREATE INDEX {quote(f'ix_{source.table}_{source.time_column}')} "
        f"ON {table} ({quote(source.time_column)})"
    )
    message = (
        f"{source.description}: no index on the time column '{source.time_column}', so every "
        f"period's statistics scan the whole table; create one: {statement}"
    )
    warnings.warn(message, MissingIndexWarning, stacklevel=2)
    log.warning(message)
    return message
