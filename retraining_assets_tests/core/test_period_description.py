"""A period described instead of copied: the Parquet row groups or the SQL that hold it."""

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retraining_assets.core.database import make_engine
from retraining_assets.core.period_description import PeriodDescription, describe_period
from retraining_assets.core.sources import FileRecordSource, SqlRecordSource


def test_a_parquet_period_names_only_its_row_groups(tmp_path: Path) -> None:
    # two files of five daily row groups each: days 1-5 and 6-10 of March
    for part, first in (("a", 1), ("b", 6)):
        frames = [
            pd.DataFrame(
                {
                    "ts": pd.date_range(f"2024-03-{day:02d}", periods=24, freq="h"),
                    "x": np.arange(24.0),
                }
            )
            for day in range(first, first + 5)
        ]
        with pq.ParquetWriter(
            tmp_path / f"{part}.parquet", pa.Table.from_pandas(frames[0]).schema
        ) as writer:
            for frame in frames:
                writer.write_table(pa.Table.from_pandas(frame, preserve_index=False))
    source = FileRecordSource(path=str(tmp_path / "*.parquet"), time_column="ts")
    start, end = datetime(2024, 3, 4), datetime(2024, 3, 7)  # days 4, 5 and 6
    sample = source.load(start, end)
    description = describe_period(source, "2024-03-04", start, end, len(sample), sample, [])
    assert [(Path(p.path).name, p.row_groups) for p in description.files] == [
        ("a.parquet", [3, 4]),
        ("b.parquet", [0]),
    ]
    assert description.rows == 72 and description.query is None
    assert description.statistics["x"] == {
        "dtype": "float64", "null_share": 0.0, "min": 0.0, "max": 23.0, "mean": 11.5,
    }  # fmt: skip
    assert PeriodDescription.from_dict(description.to_dict()) == description


def test_a_sql_period_names_its_query_in_the_databases_sql(postgres_database: str) -> None:
    frame = pd.DataFrame({"ts": pd.date_range("2024-03-01", periods=48, freq="h"), "x": 1.0})
    with make_engine(postgres_database).begin() as connection:
        frame.to_sql("records", connection, index=False)
    source = SqlRecordSource(url=postgres_database, table="records", time_column="ts")
    start, end = datetime(2024, 3, 2), datetime(2024, 3, 3)
    sample = source.load(start, end)
    description = describe_period(source, "2024-03-02", start, end, 24, sample, [])
    assert description.files == [] and description.validated_rows == 24
    assert "WHERE records.ts >= '2024-03-02 00:00:00' AND records.ts < '2024-03-03 00:00:00'" in (
        description.query
    )
    with make_engine(postgres_database).connect() as connection:  # the query runs as stored
        assert len(connection.exec_driver_sql(description.query).all()) == 24
