"""Monitoring statistics computed where the data lives: SQL run by the source database
(``sql``), DuckDB over Parquet/CSV files out of core (``duckdb_engine``), Spark SQL (``spark``,
optional). ``pushdown`` turns a reference profile and a period into SQL whose results feed
``core.drift``'s own verdict; ``reference`` fits a profile through DuckDB; ``choice`` picks
the engine (``RETRAIN_ENGINE``); ``entrypoints`` holds the one-call uses."""

from retraining_assets.core.engines.choice import (
    AUTO_PUSHDOWN_BYTES,
    AUTO_PUSHDOWN_ROWS,
    ENGINES,
    EngineName,
    choose_engine,
)
from retraining_assets.core.engines.duckdb_engine import DuckDBRunner, file_relation
from retraining_assets.core.engines.entrypoints import (
    compare_drift_window,
    compare_window,
    drift_between_files_in_duckdb,
)
from retraining_assets.core.engines.pushdown import EngineError, Relation, compare_pushdown
from retraining_assets.core.engines.reference import fit_reference_in_engine
from retraining_assets.core.engines.sql import MissingIndexWarning, SqlRunner, sql_relation

__all__ = [
    "AUTO_PUSHDOWN_BYTES",
    "AUTO_PUSHDOWN_ROWS",
    "ENGINES",
    "DuckDBRunner",
    "EngineError",
    "EngineName",
    "MissingIndexWarning",
    "Relation",
    "SqlRunner",
    "choose_engine",
    "compare_drift_window",
    "compare_pushdown",
    "compare_window",
    "drift_between_files_in_duckdb",
    "file_relation",
    "fit_reference_in_engine",
    "sql_relation",
]
