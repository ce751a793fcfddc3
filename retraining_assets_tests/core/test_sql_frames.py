"""Columnar reads (ADBC) return exactly what ``pandas.read_sql`` returns, on SQLite and the
real PostgreSQL, and fall back to it where ADBC cannot type a column."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
import sqlalchemy as sa

from retraining_assets.core.database import make_engine, platform_engine
from retraining_assets.core.demo import DemoStream
from retraining_assets.core.sources import SqlRecordSource
from retraining_assets.core.sql_frames import read_frame

STREAM = DemoStream(rows_per_month=300, months=4, end_month=pd.Timestamp("2026-04-01"))
START, END = datetime(2026, 2, 3, 12), datetime(2026, 4, 1)  # from mid-month, a bound inside


def both_ways(source: SqlRecordSource) -> tuple[pd.DataFrame, pd.DataFrame]:
    engine = make_engine(source.url)
    with engine.connect() as connection:
        rows = pd.read_sql(source.query(START, END), connection)
    return read_frame(source.query(START, END), engine), rows


def assert_same(columnar: pd.DataFrame, rows: pd.DataFrame, time_column: str) -> None:
    assert len(columnar) > 0
    assert list(columnar.columns) == list(rows.columns)
    # the time column's raw type differs by driver (text in SQLite); the source parses both
    times = [pd.to_datetime(frame.pop(time_column)) for frame in (columnar, rows)]
    pd.testing.assert_series_equal(times[0], times[1], check_dtype=False)
    pd.testing.assert_frame_equal(columnar, rows, check_dtype=False)
    for name in rows.columns:  # same kinds of values: numbers stay numbers, text stays text
        assert columnar[name].dtype.kind == rows[name].dtype.kind, name


def test_sqlite_columnar_read_equals_read_sql(platform_db: sa.Engine, settings) -> None:
    STREAM.seed_database(platform_db, through=3)
    source = SqlRecordSource(settings.platform_database_url, "demo_records", "event_time")
    assert_same(*both_ways(source), "event_time")


@pytest.mark.postgres
def test_postgres_columnar_read_equals_read_sql(postgres_database: str) -> None:
    STREAM.seed_database(platform_engine(postgres_database), through=3)
    source = SqlRecordSource(postgres_database, "demo_records", "event_time")
    assert_same(*both_ways(source), "event_time")


def test_a_column_adbc_cannot_type_falls_back_to_rows(tmp_path, caplog) -> None:
    # SQLite types each value: a text value after 2,000 integers in an untyped column
    url = f"sqlite:///{tmp_path / 'mixed.db'}"
    engine = make_engine(url)
    values = [*range(2000), "n/a"]
    frame = pd.DataFrame({"t": pd.date_range("2026-03-01", periods=len(values), freq="min")})
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE mixed (t TIMESTAMP, v)")
        connection.execute(
            sa.text("INSERT INTO mixed VALUES (:t, :v)"),
            [{"t": t.to_pydatetime(), "v": v} for t, v in zip(frame["t"], values, strict=True)],
        )
    source = SqlRecordSource(url, "mixed", "t")
    loaded = source.load()
    assert len(loaded) == len(values)
    assert loaded["v"].iloc[-1] == "n/a"
    assert "reading it row by row" in caplog.text
