"""A SQL query read into a DataFrame, columnar where the database allows it.

``pandas.read_sql`` over SQLAlchemy builds a Python tuple per row and converts object columns
back to arrays: reading a week of 100k records a day took 7.8 s from SQLite. ADBC (Arrow
Database Connectivity, the Apache Arrow project's drivers) reads the same result straight
into Arrow columns in 1.6 s (BENCHMARKS.md, "Monitoring"). SQLite and PostgreSQL go through
ADBC; every other database, and any result ADBC cannot type (SQLite's per-value types can
change mid-column), goes through ``pandas.read_sql`` as before, with the same rows and dtypes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import adbc_driver_postgresql.dbapi as adbc_postgresql
import adbc_driver_sqlite.dbapi as adbc_sqlite
import pandas as pd
import sqlalchemy as sa

log = logging.getLogger(__name__)


def read_frame(query: sa.Select, engine: sa.Engine) -> pd.DataFrame:
    """The rows of ``query`` on ``engine``, as ``pandas.read_sql`` would return them."""
    connect = _adbc_connect(engine.url)
    if connect is not None:
        # literal binds: ADBC drivers differ in parameter styles, and the window bounds are
        # rendered by the dialect's own literal processors (the same text SQLAlchemy binds)
        sql = str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
        try:
            with connect() as connection, connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetch_arrow_table().to_pandas()
        except Exception as error:
            log.warning("ADBC could not read the query (%s); reading it row by row", error)
    with engine.connect() as connection:
        return pd.read_sql(query, connection)


def _adbc_connect(url: sa.URL) -> Callable | None:
    backend = url.get_backend_name()
    if backend == "sqlite" and url.database and url.database != ":memory:":
        return lambda: adbc_sqlite.connect(url.database)
    if backend == "postgresql":
        uri = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return lambda: adbc_postgresql.connect(uri)
    return None
