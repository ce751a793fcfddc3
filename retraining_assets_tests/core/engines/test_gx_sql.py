"""Great Expectations' SQL datasource validates a period in the database (PostgreSQL, real, and
SQLite) with the in-memory suite's expectations and the same outcomes on the same data; a
large period's description records how many records its checks covered."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from retraining_assets.core.demo import SPEC, DemoStream
from retraining_assets.core.engines.gx_sql import (
    PeriodValidation,
    period_query,
    validate_large_period,
    validate_period_in_database,
)
from retraining_assets.core.period_description import PeriodDescription, describe_period
from retraining_assets.core.sources import FileRecordSource, RecordSource, SqlRecordSource
from retraining_assets.core.validation import (
    CheckOutcome,
    ReferenceBounds,
    Tolerances,
    validate_period,
)

STREAM = DemoStream(months=24, rows_per_month=300, end_month=pd.Timestamp("2025-12-01"))
SHIFTED = 20  # past the partner-channel shift: unseen categories, scores out of range


def _source(url: str, frame: pd.DataFrame) -> SqlRecordSource:
    engine = sa.create_engine(url)
    frame.to_sql("records", engine, index=False, if_exists="replace")
    engine.dispose()
    return SqlRecordSource(url=url, table="records", time_column=SPEC.time_column)


def _frame(*, bad_labels: bool) -> pd.DataFrame:
    frame = pd.concat([STREAM.generate(0), STREAM.generate(SHIFTED)], ignore_index=True)
    if bad_labels:  # a label outside the known classes and a missing one: blocking failures
        frame[SPEC.target] = frame[SPEC.target].astype(float)
        tail = frame.index[-40:]
        frame.loc[tail[:30], SPEC.target] = 7.0
        frame.loc[tail[30:], SPEC.target] = None
    return frame


def _window(month: int) -> tuple[datetime, datetime]:
    return (
        STREAM.month_start(month).to_pydatetime(),
        STREAM.month_start(month + 1).to_pydatetime(),
    )


def _bounds() -> ReferenceBounds:
    return ReferenceBounds.learn(STREAM.generate(0), SPEC)


def _comparable(outcomes: list[CheckOutcome]) -> list[tuple]:
    """Everything but the example values (each engine picks its own first few) and an
    observed type's name (a dtype in memory, a SQL type in the database)."""
    return [
        (o.name, o.blocking, o.passed, o.expectations,
         sorted((f["expectation"], f["column"], _detail(f)) for f in o.failures))
        for o in outcomes
    ]  # fmt: skip


def _detail(failure: dict) -> str:
    typed = failure["expectation"] == "expect_column_values_to_be_in_type_list"
    return "observed a non-numeric type" if typed else failure["detail"]


def _assert_same_as_in_memory(source: SqlRecordSource, month: int) -> list[CheckOutcome]:
    start, end = _window(month)
    in_database = validate_period_in_database(source, start, end, SPEC, _bounds())
    in_memory = validate_period(source.load(start, end), SPEC, _bounds())
    assert _comparable(in_database) == _comparable(in_memory)
    return in_database


@pytest.mark.parametrize("bad_labels", [False, True])
def test_sqlite_validates_in_the_database_as_in_memory(tmp_path: Path, bad_labels: bool) -> None:
    source = _source(f"sqlite:///{tmp_path / 'records.db'}", _frame(bad_labels=bad_labels))
    clean = _assert_same_as_in_memory(source, 0)
    assert all(o.passed for o in clean)
    shifted = {o.name: o for o in _assert_same_as_in_memory(source, SHIFTED)}
    assert not shifted["categorical_domains"].passed  # the partner channel is new
    assert shifted["target_valid"].passed is not bad_labels
    assert shifted["schema"].passed and shifted["non_empty"].passed


@pytest.mark.parametrize("bad_labels", [False, True])
def test_postgres_validates_in_the_database_as_in_memory(
    postgres_database: str, bad_labels: bool
) -> None:
    source = _source(postgres_database, _frame(bad_labels=bad_labels))
    assert all(o.passed for o in _assert_same_as_in_memory(source, 0))
    shifted = {o.name: o for o in _assert_same_as_in_memory(source, SHIFTED)}
    assert not shifted["categorical_domains"].passed
    assert shifted["target_valid"].passed is not bad_labels


def test_an_empty_period_and_a_missing_column_fail_the_same_blocking_checks(
    tmp_path: Path,
) -> None:
    frame = _frame(bad_labels=False).drop(columns=[SPEC.numeric_features[0]])
    source = _source(f"sqlite:///{tmp_path / 'records.db'}", frame)
    outcomes = {o.name: o for o in _assert_same_as_in_memory(source, 5)}  # no rows in month 5
    assert not outcomes["non_empty"].passed and not outcomes["schema"].passed
    missing = [f["column"] for f in outcomes["schema"].failures]
    assert missing == [SPEC.numeric_features[0]]


def test_the_query_asset_holds_the_period_where_in_the_databases_dialect(
    postgres_database: str,
) -> None:
    source = _source(postgres_database, _frame(bad_labels=False))
    start, end = _window(SHIFTED)
    query = period_query(source, start, end)
    with sa.create_engine(postgres_database).connect() as connection:
        rows = connection.exec_driver_sql(f"SELECT count(*) FROM ({query}) AS period").scalar()
    assert rows == source.count(start, end) > 0


def _large_period(source: RecordSource) -> tuple[PeriodValidation, PeriodDescription, int]:
    """The shifted month (its bad labels included) validated as a period too large to copy,
    with a seeded sample that holds only valid labels, and its description."""
    start, end = _window(SHIFTED)
    rows = source.count(start, end)
    loaded = source.load(start, end)
    sample = loaded[loaded[SPEC.target].isin([0, 1])].head(50)
    checked = validate_large_period(source, start, end, rows, sample, SPEC, _bounds(), Tolerances())
    description = describe_period(
        source, "shifted", start, end, rows, sample, checked.outcomes, checked.validated_rows
    )
    return checked, description, rows


def test_a_large_sql_period_records_every_row_the_database_validated(
    postgres_database: str,
) -> None:
    source = _source(postgres_database, _frame(bad_labels=True))
    checked, description, rows = _large_period(source)
    assert checked.validated_rows == description.validated_rows == rows > 50
    assert description.sample_rows == 50  # the statistics' sample, recorded beside it
    # the bad labels lie outside the sample: only a validation of every row finds them
    assert not {o.name: o for o in checked.outcomes}["target_valid"].passed
    assert PeriodDescription.from_dict(description.to_dict()) == description


def test_a_large_file_period_records_the_sample_it_validated(tmp_path: Path) -> None:
    path = tmp_path / "records.parquet"
    _frame(bad_labels=True).to_parquet(path, index=False)
    source = FileRecordSource(path=str(path), time_column=SPEC.time_column)
    checked, description, rows = _large_period(source)
    assert checked.validated_rows == description.validated_rows == 50 < rows
    assert {o.name: o for o in checked.outcomes}["target_valid"].passed  # the sample is clean
    assert "seeded sample of 50" in checked.where
