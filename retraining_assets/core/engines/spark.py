"""The same SQL on Spark SQL (optional: ``pip install 'retraining-assets[spark]'``, Java 17).

Locally a ``local[*]`` session; on a cluster pass the session Databricks/EMR gives you
(``SparkRunner(session=spark)``), typically from a Dagster Pipes step, and a relation over the
table or files there. Only the statistics travel back to Python: a few rows per query."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from retraining_assets.core.engines.choice import spark_available
from retraining_assets.core.engines.dialect import SPARK, Dialect
from retraining_assets.core.engines.pushdown import EngineError, Relation
from retraining_assets.core.sources import FileRecordSource


@dataclass
class SparkRunner:
    """Spark SQL through a ``SparkSession`` (a local one, UTC, when none is given)."""

    session: Any = None
    dialect: Dialect = SPARK
    _own: bool = field(default=False, init=False, repr=False)
    _names: Any = field(default_factory=itertools.count, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.session is None:
            spark_available()
            from pyspark.sql import SparkSession

            self.session = (
                SparkSession.builder.master("local[2]")
                .appName("retraining-assets-drift")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", "4")
                .getOrCreate()
            )
            self._own = True

    def close(self) -> None:
        if self._own and self.session is not None:
            self.session.stop()
            self.session = None

    def __enter__(self) -> SparkRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return [tuple(row) for row in self.session.sql(sql).collect()]
        except Exception as error:  # pyspark's AnalysisException and Py4J errors
            first = str(error).strip().splitlines()[0]
            raise EngineError(f"Spark SQL failed: {first}") from None

    def values(self, sql: str) -> np.ndarray:
        return np.array([row[0] for row in self.rows(sql)], dtype=np.float64)

    def upload(self, values: np.ndarray) -> str:
        name = f"_retrain_values_{next(self._names)}"
        frame = pd.DataFrame({"v": np.asarray(values, dtype=np.float64)})
        self.session.createDataFrame(frame).createOrReplaceTempView(name)
        return name


def spark_file_relation(
    runner: SparkRunner,
    source: FileRecordSource,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Relation:
    """The window of a Parquet file source as a Spark SQL subquery (Spark prunes row groups
    by the time predicate)."""
    files = [str(path) for path in source.files()]
    if not all(name.lower().endswith((".parquet", ".pq")) for name in files):
        raise EngineError(f"RETRAIN_ENGINE=spark reads Parquet files, not {source.description}")
    view = f"_retrain_period_{next(runner._names)}"
    runner.session.read.parquet(*files).createOrReplaceTempView(view)
    columns = [c for c in runner.session.table(view).columns if not c.startswith("__index_level")]
    q = runner.dialect.quote
    terms = []
    if start is not None:
        terms.append(
            f"{q(source.time_column)} >= TIMESTAMP '{pd.Timestamp(start).isoformat(sep=' ')}'"
        )
    if end is not None:
        terms.append(
            f"{q(source.time_column)} < TIMESTAMP '{pd.Timestamp(end).isoformat(sep=' ')}'"
        )
    where = f" WHERE {' AND '.join(terms)}" if terms else ""
    select = ", ".join(q(c) for c in columns)
    return Relation(f"(SELECT {select} FROM {view}{where}) AS cur", columns, source.description)
