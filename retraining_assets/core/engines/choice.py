"""Which engine computes a drift window's statistics: ``RETRAIN_ENGINE`` when set, otherwise
(``auto``) chosen by the source and the window's size."""

from __future__ import annotations

import importlib.util
import shutil
from typing import Literal

import sqlalchemy as sa

from retraining_assets.core.engines.pushdown import EngineError
from retraining_assets.core.sources import FileRecordSource, RecordSource, SqlRecordSource

EngineName = Literal["memory", "duckdb", "sql", "spark"]
ENGINES = ("auto", "memory", "duckdb", "sql", "spark")
# Below this many records pandas is fastest and a seeded sample bounds memory anyway; above
# it the period stays where it lives.
AUTO_PUSHDOWN_ROWS = 1_000_000
# `retrain drift --engine auto`: files larger than this on disk are streamed through DuckDB.
AUTO_PUSHDOWN_BYTES = 256 * 2**20
SQL_DIALECTS = ("postgresql", "sqlite")


def choose_engine(setting: str, source: RecordSource, n_rows: int) -> EngineName:
    """The engine for a window of ``n_rows`` records of ``source``; an explicit setting the
    source cannot use raises ``EngineError`` naming ``RETRAIN_ENGINE``."""
    if setting not in ENGINES:
        raise EngineError(f"RETRAIN_ENGINE={setting!r} is not one of {', '.join(ENGINES)}")
    if setting == "memory":
        return "memory"
    if setting == "auto":
        if n_rows < AUTO_PUSHDOWN_ROWS:
            return "memory"
        if isinstance(source, FileRecordSource):
            return "duckdb"
        if isinstance(source, SqlRecordSource) and _sql_dialect(source) in SQL_DIALECTS:
            return "sql"
        return "memory"
    if setting == "duckdb" and not isinstance(source, FileRecordSource):
        raise EngineError(f"RETRAIN_ENGINE=duckdb needs a file source, not {source.description}")
    if setting == "sql":
        if not isinstance(source, SqlRecordSource):
            raise EngineError(f"RETRAIN_ENGINE=sql needs a SQL table, not {source.description}")
        if _sql_dialect(source) not in SQL_DIALECTS:
            raise EngineError(
                f"RETRAIN_ENGINE=sql supports {', '.join(SQL_DIALECTS)}, not {source.description}"
            )
    if setting == "spark":
        spark_available()
    return setting  # type: ignore[return-value]


def _sql_dialect(source: SqlRecordSource) -> str:
    return sa.engine.make_url(source.url).get_backend_name()


def spark_available() -> None:
    """Raises ``EngineError`` saying what to install when pyspark or Java is missing."""
    if importlib.util.find_spec("pyspark") is None:
        raise EngineError(
            "RETRAIN_ENGINE=spark needs pyspark: pip install 'retraining-assets[spark]'"
        )
    if shutil.which("java") is None:
        raise EngineError("RETRAIN_ENGINE=spark needs Java 17 on PATH (pyspark runs on the JVM)")
