"""The source database computes the same drift report as the in-memory engine (PostgreSQL,
real, from RETRAIN_TEST_POSTGRES_URL; SQLite), and says when the time column has no index."""

from __future__ import annotations

import warnings
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from retraining_assets.core.drift import DriftInputError, fit_reference
from retraining_assets.core.engines import (
    AUTO_PUSHDOWN_ROWS,
    EngineError,
    MissingIndexWarning,
    SqlRunner,
    choose_engine,
    compare_drift_window,
    compare_pushdown,
    sql_relation,
)
from retraining_assets.core.sources import FileRecordSource, SqlRecordSource
from retraining_assets_tests.core.engines.equality import assert_same_report, records

START, END = datetime(2024, 1, 2), datetime(2024, 1, 30)


def _table(url: str, *, index: bool) -> SqlRecordSource:
    frame = records(50_000, 0.2, seed=3)
    frame.loc[3000:3100, "color"] = "purple"
    engine = sa.create_engine(url)
    frame.to_sql("records", engine, index=False, if_exists="replace")
    if index:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE INDEX ix_records_ts ON records (ts)")
    engine.dispose()
    return SqlRecordSource(url=url, table="records", time_column="ts")


def _profile():
    return fit_reference(records(30_000, 0.0, seed=4).drop(columns="ts"), target="label")


def test_postgres_computes_the_in_memory_report(postgres_database: str) -> None:
    source = _table(postgres_database, index=True)
    profile = _profile()
    with SqlRunner(source.url) as runner:
        pushed = compare_pushdown(profile, runner, sql_relation(runner, source, START, END))
    memory = profile.compare(source.load(START, END))
    assert pushed.n_current == 28 * 24 * 60 and pushed.dataset_drift
    assert_same_report(memory.to_dict(), pushed.to_dict())


def test_sqlite_computes_the_in_memory_report(tmp_path: Path) -> None:
    source = _table(f"sqlite:///{tmp_path / 'records.db'}", index=True)
    profile = _profile()
    with SqlRunner(source.url) as runner:
        pushed = compare_pushdown(profile, runner, sql_relation(runner, source, START, END))
    assert_same_report(profile.compare(source.load(START, END)).to_dict(), pushed.to_dict())


def test_time_column_without_index_warns_with_the_statement(postgres_database: str) -> None:
    source = _table(postgres_database, index=False)
    expected = r"CREATE INDEX .*ON records \(ts\)"
    with SqlRunner(source.url) as runner, pytest.warns(MissingIndexWarning, match=expected) as seen:
        sql_relation(runner, source, START, END)
    statement = str(seen[0].message).split("create one: ", 1)[1]
    with sa.create_engine(source.url).begin() as connection:  # the statement works as given
        connection.exec_driver_sql(statement)
    with SqlRunner(source.url) as runner, warnings.catch_warnings():
        warnings.simplefilter("error", MissingIndexWarning)
        sql_relation(runner, source, START, END)


def test_monitoring_comparison_follows_the_engine_setting(tmp_path: Path) -> None:
    """auto: memory for small windows, the database above AUTO_PUSHDOWN_ROWS; memory and
    sql give the same verdict; an engine the source cannot use names RETRAIN_ENGINE."""
    source = _table(f"sqlite:///{tmp_path / 'records.db'}", index=True)
    files = FileRecordSource(path=str(tmp_path / "*.parquet"), time_column="ts")
    assert choose_engine("auto", source, 10) == "memory"
    assert choose_engine("auto", source, AUTO_PUSHDOWN_ROWS) == "sql"
    assert choose_engine("auto", files, AUTO_PUSHDOWN_ROWS) == "duckdb"
    with pytest.raises(EngineError, match="RETRAIN_ENGINE=duckdb needs a file source"):
        choose_engine("duckdb", source, 10)
    profile, window = _profile(), (START, END, source.count(START, END))
    sample = source.load(START, END)
    in_memory, engine = compare_drift_window(profile, source, window, "memory", sample)
    pushed, pushed_engine = compare_drift_window(profile, source, window, "sql", sample)
    assert (engine, pushed_engine) == ("memory", "sql")
    assert_same_report(in_memory.to_dict(), pushed.to_dict())


def test_frame_without_a_profile_column_is_refused(tmp_path: Path) -> None:
    source = _table(f"sqlite:///{tmp_path / 'records.db'}", index=True)
    profile = fit_reference(
        records(1_000, 0.0, seed=5).drop(columns="ts").assign(extra=1.0), target="label"
    )
    with SqlRunner(source.url) as runner, pytest.raises(DriftInputError, match="'extra'"):
        compare_pushdown(profile, runner, sql_relation(runner, source, START, END))
