"""A large training window is read as its whole holdout plus a time-stratified sample, the
same rows whether PostgreSQL draws them or pyarrow reads them from Parquet."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from retraining_assets.core.database import make_engine
from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.sampling import WindowSample
from retraining_assets.core.sources import FileRecordSource, RecordSource, SqlRecordSource
from retraining_assets.core.splits import TrainingError, split_by_time
from retraining_assets.core.training_sample import read_training_window

START, END = datetime(2024, 3, 1), datetime(2024, 3, 11)
SPEC = DatasetSpec(
    time_column="ts", target="y", task="classification", numeric_features=("x",),
    categorical_features=(),
)  # fmt: skip


def records() -> pd.DataFrame:
    """Ten days, day d holding 300 * (d + 1) records (16,500 in all), every fifth record
    sharing its timestamp with the one before (ties at any boundary)."""
    rng = np.random.default_rng(7)
    days = []
    for day in range(10):
        n = 300 * (day + 1)
        seconds = np.sort(rng.integers(0, 86_400, n))
        seconds[4::5] = seconds[3::5][: len(seconds[4::5])]
        days.append(pd.Timestamp(START) + pd.Timedelta(days=day) + pd.to_timedelta(seconds, "s"))
    ts = np.concatenate([d.to_numpy() for d in days])
    return pd.DataFrame(
        {
            "ts": ts,
            "record": np.arange(len(ts)),
            "x": rng.normal(size=len(ts)),
            "y": rng.integers(0, 2, len(ts)),
        }
    )


@pytest.fixture(scope="module")
def frame_template() -> pd.DataFrame:
    return records()


@pytest.fixture
def frame(frame_template: pd.DataFrame) -> pd.DataFrame:
    """The records, a copy for each test (the template is built once per module)."""
    return frame_template.copy()


@pytest.fixture(params=["parquet", "postgres"])
def source(request, frame: pd.DataFrame, tmp_path: Path) -> RecordSource:
    if request.param == "parquet":
        path = tmp_path / "records.parquet"
        # shuffled, in small row groups: the source must rank by time, not trust file order
        frame.sample(frac=1, random_state=3).to_parquet(path, row_group_size=2_000)
        return FileRecordSource(path=str(path), time_column="ts")
    url = request.getfixturevalue("postgres_database")
    with make_engine(url).begin() as connection:
        frame.to_sql("records", connection, index=False)
        connection.execute(sa.text("CREATE INDEX ON records (ts)"))
    return SqlRecordSource(url=url, table="records", time_column="ts")


def newest(frame: pd.DataFrame, n: int) -> set[int]:
    return set(frame.sort_values(["ts", "record"], kind="stable")["record"].iloc[-n:])


def test_a_window_under_the_cap_is_read_whole(source: RecordSource, frame) -> None:
    read, sample = read_training_window(source, START, END, max_rows=20_000, holdout_records=500)
    assert len(read) == sample.n_window == sample.n_read == len(frame)
    assert not sample.sampled


def test_the_cap_is_respected_and_the_holdout_kept_whole(source: RecordSource, frame) -> None:
    read, sample = read_training_window(source, START, END, max_rows=4_000, holdout_records=500)
    assert len(read) <= 4_000 and len(read) == sample.n_read
    assert (sample.n_window, sample.n_holdout, sample.max_rows) == (len(frame), 500, 4_000)
    assert sample.sampled and sample.to_dict()["sampled"]
    assert newest(frame, 500) <= set(read["record"])  # every one of the newest records
    assert read["ts"].is_monotonic_increasing
    split = split_by_time(read, SPEC, holdout_records=500, n_holdout=sample.n_holdout)
    assert set(split.holdout["record"]) == newest(frame, 500)


def test_the_sample_is_stratified_by_day(source: RecordSource, frame) -> None:
    read, _ = read_training_window(source, START, END, max_rows=4_000, holdout_records=500)
    boundary = frame["ts"].sort_values().iloc[-500]
    before_all = frame[frame["ts"] < boundary]
    before_read = read[read["ts"] < boundary]
    share = len(before_read) / len(before_all)
    per_day = before_read.groupby(before_read["ts"].dt.day).size()
    expected = before_all.groupby(before_all["ts"].dt.day).size() * share
    # a random draw of this size would miss each day by sqrt(n) ~ 20 rows; the sequence by 3
    assert (per_day - expected).abs().max() <= 3
    assert set(before_read["record"]) <= set(before_all["record"])


def test_the_sample_is_seeded_by_the_window(source: RecordSource) -> None:
    first, sample = read_training_window(source, START, END, max_rows=4_000, holdout_records=500)
    again, same = read_training_window(source, START, END, max_rows=4_000, holdout_records=500)
    pd.testing.assert_frame_equal(first, again)
    assert sample == same
    _, moved = read_training_window(
        source, datetime(2024, 3, 1, 1), END, max_rows=4_000, holdout_records=500
    )
    assert moved.seed != sample.seed


def test_postgres_draws_the_rows_pyarrow_reads(postgres_database, frame, tmp_path) -> None:
    path = tmp_path / "records.parquet"
    frame.to_parquet(path)
    with make_engine(postgres_database).begin() as connection:
        frame.to_sql("records", connection, index=False)
    sql = SqlRecordSource(url=postgres_database, table="records", time_column="ts")
    files = FileRecordSource(path=str(path), time_column="ts")
    by_sql, _ = read_training_window(sql, START, END, max_rows=6_000, holdout_records=0)
    by_files, _ = read_training_window(files, START, END, max_rows=6_000, holdout_records=0)
    assert list(by_sql["record"]) == list(by_files["record"])


def test_the_parquet_sample_is_the_frame_sample(frame, tmp_path) -> None:
    path = tmp_path / "records.parquet"
    frame.sample(frac=1, random_state=1).to_parquet(path, row_group_size=1_000)
    source = FileRecordSource(path=str(path), time_column="ts")
    sample = WindowSample.of(len(frame), 2_000, "2024-03-10")
    expected = sample.take(source.load(START, END)).reset_index(drop=True)
    pd.testing.assert_frame_equal(source.sample(START, END, sample), expected)


def test_a_glob_of_parquet_files_samples_as_one_table(frame, tmp_path) -> None:
    shuffled = frame.sample(frac=1, random_state=2).reset_index(drop=True)
    for part, rows in enumerate(np.array_split(np.arange(len(shuffled)), 3)):
        shuffled.iloc[rows].to_parquet(tmp_path / f"part{part}.parquet", row_group_size=700)
    source = FileRecordSource(path=str(tmp_path / "part*.parquet"), time_column="ts")
    sample = WindowSample.of(len(frame), 2_500, "2024-03-10")
    expected = sample.take(source.load(START, END)).reset_index(drop=True)
    pd.testing.assert_frame_equal(source.sample(START, END, sample), expected)


def test_a_cap_below_the_holdout_names_the_setting(source: RecordSource) -> None:
    with pytest.raises(TrainingError, match=r"RETRAIN_TRAINING_MAX_ROWS=400 .*holdout"):
        read_training_window(source, START, END, max_rows=400, holdout_records=500)


def test_newest_time_counts_ties(source: RecordSource, frame) -> None:
    ordered = frame["ts"].sort_values()
    assert source.newest_time(START, END, 1) == ordered.iloc[-1]
    assert source.newest_time(START, END, 500) == ordered.iloc[-500]
    assert source.newest_time(START, END, len(frame) + 1) is None
