import gzip
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from retraining_assets.core.database import DatabaseError, make_engine, platform_engine
from retraining_assets.core.demo import DemoStream
from retraining_assets.core.sources import (
    FileRecordSource,
    RecordSource,
    SourceError,
    SqlRecordSource,
    read_table,
)

MARCH, APRIL = datetime(2024, 3, 1), datetime(2024, 4, 1)


def _three_months(stream: DemoStream) -> pd.DataFrame:
    return pd.concat([stream.generate(offset) for offset in range(3)], ignore_index=True)


def _assert_window_semantics(source: RecordSource, frame: pd.DataFrame) -> None:
    """Every backend answers the same questions the same way."""
    in_march = frame[(frame.event_time >= MARCH) & (frame.event_time < APRIL)]
    loaded = source.load(MARCH, APRIL)
    assert len(loaded) == len(in_march) > 0
    assert loaded["event_time"].is_monotonic_increasing
    assert loaded["event_time"].min() >= MARCH and loaded["event_time"].max() < APRIL
    assert source.count(MARCH, APRIL) == len(in_march)
    assert source.count() == len(frame)
    watermark = in_march["event_time"].max().to_pydatetime()
    assert source.count_since(watermark) == int((frame.event_time > watermark).sum())
    assert source.count_since(None) == len(frame)
    first, last = source.time_range()
    assert (first, last) == (frame.event_time.min(), frame.event_time.max())
    assert source.load(datetime(2030, 1, 1), datetime(2030, 2, 1)).empty


@pytest.fixture
def seeded(platform_db: sa.Engine, small_stream: DemoStream) -> pd.DataFrame:
    small_stream.seed_database(platform_db, through=2)
    return _three_months(small_stream)


def test_sql_source_on_sqlite(settings, seeded: pd.DataFrame) -> None:
    source = SqlRecordSource(settings.platform_database_url, "demo_records", "event_time")
    _assert_window_semantics(source, seeded)
    assert "id" not in source.load(MARCH, APRIL).columns  # the surrogate key is not data


def test_sql_window_is_pushed_down_as_a_where_clause(settings, seeded: pd.DataFrame) -> None:
    source = SqlRecordSource(settings.platform_database_url, "demo_records", "event_time")
    sql = str(source.query(MARCH, APRIL).compile(make_engine(source.url)))
    assert "WHERE demo_records.event_time >= ? AND demo_records.event_time < ?" in sql
    assert sql.rstrip().endswith("ORDER BY demo_records.event_time")


@pytest.mark.postgres
def test_sql_source_on_postgres(postgres_database: str, small_stream: DemoStream) -> None:
    engine = platform_engine(postgres_database)
    small_stream.seed_database(engine, through=2)
    source = SqlRecordSource(postgres_database, "demo_records", "event_time")
    _assert_window_semantics(source, _three_months(small_stream))


@pytest.mark.parametrize("kind", ["csv", "csv.gz", "parquet", "glob"])
def test_file_sources(tmp_path: Path, small_stream: DemoStream, kind: str) -> None:
    frame = _three_months(small_stream)
    if kind == "glob":
        for offset in range(3):
            small_stream.generate(offset).to_parquet(tmp_path / f"part-{offset}.parquet")
        path = str(tmp_path / "part-*.parquet")
    else:
        path = str(tmp_path / f"records.{kind}")
        frame.to_parquet(path) if kind == "parquet" else frame.to_csv(path, index=False)
    _assert_window_semantics(FileRecordSource(path, "event_time"), frame)


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(SourceError, match=r"nope\.csv"):
        FileRecordSource(str(missing), "ts").load()
    with pytest.raises(SourceError, match="no readable file"):
        FileRecordSource(str(tmp_path / "*.parquet"), "ts").count()


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(b"this is not gzip")
    with pytest.raises(SourceError, match=r"cannot read .*broken.csv.gz"):
        read_table(broken)
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 garbage")
    with pytest.raises(SourceError, match=r"corrupt\.parquet"):
        FileRecordSource(str(corrupt), "ts").load()


def test_unparseable_timestamps_name_file_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("ts,x,y\n2024-01-01,1,0\nyesterday-ish,2,1\n")
    with pytest.raises(SourceError, match=r"bad.csv.gz.*column 'ts'.*unparseable"):
        FileRecordSource(str(path), "ts").load()


def test_missing_time_column_is_named(tmp_path: Path, settings, seeded) -> None:
    path = tmp_path / "r.csv"
    pd.DataFrame({"a": [1]}).to_csv(path, index=False)
    with pytest.raises(SourceError, match="no time column 'ts'"):
        FileRecordSource(str(path), "ts").load()
    with pytest.raises(SourceError, match="no time column 'ts'"):
        SqlRecordSource(settings.platform_database_url, "demo_records", "ts").count()
    with pytest.raises(SourceError, match=r"table .nope.*no such table"):
        SqlRecordSource(settings.platform_database_url, "nope", "ts").count()


def test_unreachable_database_is_named_with_password_masked() -> None:
    url = "postgresql+psycopg2://alice:s3cret-pw@127.0.0.1:1/records"
    with pytest.raises(DatabaseError) as caught:
        SqlRecordSource(url, "records", "ts").count()
    message = str(caught.value)
    assert "alice:***@127.0.0.1:1/records" in message
    assert "s3cret-pw" not in message
