import gzip
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from retraining_assets.core.database import DatabaseError, make_engine, platform_engine
from retraining_assets.core.demo import DemoStream
from retraining_assets.core.sampling import WindowSample
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
    # a drift window's sample: the same records on every backend (a database draws it itself)
    sample = WindowSample.of(len(in_march), len(in_march) // 3, "2024-03-31")
    drawn = source.sample(MARCH, APRIL, sample)
    expected = sample.take(in_march.sort_values("event_time", kind="stable"))
    assert abs(len(drawn) - len(in_march) // 3) <= 2
    assert drawn["customer_id"].tolist() == expected["customer_id"].tolist()
    assert drawn["event_time"].tolist() == expected["event_time"].tolist()


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


def _frame(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=n, freq="D"),
            "x1": [0.5 * i for i in range(n)],
            "x2": list(range(n)),
            "y": [i % 2 for i in range(n)],
        }
    )


def _write(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path) if path.suffix == ".parquet" else frame.to_csv(path, index=False)


@pytest.mark.parametrize("name", ["r.csv", "r.csv.gz"])
def test_a_repeated_csv_column_is_refused_not_renamed(tmp_path: Path, name: str) -> None:
    # pandas reads the second 'x1' as 'x1.1', which would become a feature of its own
    path = tmp_path / name
    text = "ts,x1,x2,x1,y\n2024-01-01,1,2,3,0\n2024-01-02,1,2,3,1\n"
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    for read in (lambda: read_table(path), lambda: FileRecordSource(str(path), "ts").load()):
        with pytest.raises(SourceError, match=rf"{name}': column 'x1' appears 2 times"):
            read()


def test_a_repeated_parquet_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    columns = [pa.array([1, 2]), pa.array([3, 4]), pa.array(pd.date_range("2024-01-01", periods=2))]
    pq.write_table(pa.table(columns, names=["x1", "x1", "ts"]), path)
    for read in (lambda: read_table(path), lambda: FileRecordSource(str(path), "ts").count()):
        with pytest.raises(SourceError, match=r"r\.parquet': column 'x1' appears 2 times"):
            read()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_glob_file_with_a_renamed_column_is_named(tmp_path: Path, suffix: str) -> None:
    _write(_frame(), tmp_path / f"a{suffix}")
    _write(_frame().rename(columns={"x1": "x1_new"}), tmp_path / f"b{suffix}")
    pattern = str(tmp_path / f"*{suffix}")
    expected = rf"b{suffix}' has no column 'x1' and an extra column 'x1_new'.*a{suffix}"
    for read in (lambda: read_table(pattern), lambda: FileRecordSource(pattern, "ts").load()):
        with pytest.raises(SourceError, match=expected):
            read()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_glob_file_with_text_where_numbers_were_is_named(tmp_path: Path, suffix: str) -> None:
    _write(_frame(), tmp_path / f"a{suffix}")
    _write(_frame().assign(x2=["low", "mid", "high", "mid"]), tmp_path / f"b{suffix}")
    pattern = str(tmp_path / f"*{suffix}")
    for read in (lambda: read_table(pattern), lambda: FileRecordSource(pattern, "ts").load()):
        with pytest.raises(SourceError, match=rf"b{suffix}': column 'x2' .*a{suffix}"):
            read()


def test_a_glob_of_parquet_files_widens_integers_to_floats_without_loss(tmp_path: Path) -> None:
    # pyarrow alone reads every file with the first one's schema (int64 here), which does not
    # hold the second file's 0.5 and 1.5
    ints = _frame().assign(x1=[0, 1, 2, 3])
    ints.to_parquet(tmp_path / "a.parquet")
    _frame().to_parquet(tmp_path / "b.parquet")
    for frame in (
        read_table(tmp_path / "*.parquet"),
        FileRecordSource(str(tmp_path / "*.parquet"), "ts").load(),
    ):
        assert sorted(frame["x1"]) == sorted([0, 1, 2, 3, 0, 0.5, 1.0, 1.5])
    assert FileRecordSource(str(tmp_path / "*.parquet"), "ts").count() == 8


@pytest.mark.parametrize("shuffled", [True, False])
def test_a_parquet_sample_of_zoned_times_is_the_default_sample(
    tmp_path: Path, shuffled: bool
) -> None:
    """The sample ranks the time column as Arrow's int64 instants (no pandas copies; no sort
    when the file is in time order): the same records, in the same order, as the default
    sample of the loaded window, time zones, ties and an unsorted file included."""
    times = pd.date_range("2024-03-01", periods=3_000, freq="17min", tz="Europe/Berlin")
    frame = pd.DataFrame({"event_time": times.repeat(2), "customer_id": range(6_000)})
    if shuffled:  # ties, and not in time order
        frame = frame.sample(frac=1.0, random_state=5)
    frame.to_parquet(tmp_path / "zoned.parquet", row_group_size=700)
    source = FileRecordSource(path=str(tmp_path / "zoned.parquet"), time_column="event_time")
    start, end = datetime(2024, 3, 10), datetime(2024, 3, 30)
    sample = WindowSample.of(source.count(start, end), 1_000, "2024-03-29")
    drawn = source.sample(start, end, sample)
    expected = RecordSource.sample(source, start, end, sample)  # load the window, keep the sample
    assert 900 < len(drawn) < 1_100
    assert drawn["customer_id"].tolist() == expected["customer_id"].tolist()
    assert drawn["event_time"].tolist() == expected["event_time"].tolist()
    newest = source.newest_time(start, end, 3)
    assert newest == RecordSource.newest_time(source, start, end, 3)
