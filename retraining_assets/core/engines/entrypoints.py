"""One call per use: a source's window compared where it lives (the monitoring assets), and
two files compared through DuckDB (``retrain drift --engine duckdb``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from retraining_assets.core.drift.multivariate import profile_drift
from retraining_assets.core.drift.profile import ReferenceProfile
from retraining_assets.core.drift.report import DriftReport
from retraining_assets.core.drift_thresholds import DriftThresholds
from retraining_assets.core.engines.choice import EngineName, choose_engine
from retraining_assets.core.engines.duckdb_engine import (
    DEFAULT_MEMORY_LIMIT,
    DuckDBRunner,
    file_relation,
)
from retraining_assets.core.engines.pushdown import EngineError, compare_pushdown
from retraining_assets.core.engines.reference import fit_reference_in_engine
from retraining_assets.core.engines.sql import SqlRunner, sql_relation
from retraining_assets.core.sources import FileRecordSource, RecordSource, SqlRecordSource


def compare_window(
    profile: ReferenceProfile,
    source: RecordSource,
    start: datetime,
    end: datetime,
    engine: EngineName,
    thresholds: DriftThresholds | None = None,
    *,
    scores: pd.Series | np.ndarray | None = None,
) -> DriftReport:
    """``profile.compare(source.load(start, end))`` computed by ``engine`` ("sql", "duckdb"
    or "spark") without loading the window; ``scores`` as for ``compare_pushdown``."""
    if engine == "sql" and isinstance(source, SqlRecordSource):
        with SqlRunner(source.url) as runner:
            relation = sql_relation(runner, source, start, end)
            return compare_pushdown(profile, runner, relation, thresholds, scores=scores)
    if engine == "duckdb" and isinstance(source, FileRecordSource):
        with DuckDBRunner() as runner:
            relation = file_relation(
                runner, source.files(), time_column=source.time_column, start=start, end=end
            )
            return compare_pushdown(profile, runner, relation, thresholds, scores=scores)
    if engine == "spark" and isinstance(source, FileRecordSource):
        from retraining_assets.core.engines.spark import SparkRunner, spark_file_relation

        with SparkRunner() as runner:
            relation = spark_file_relation(runner, source, start, end)
            return compare_pushdown(profile, runner, relation, thresholds, scores=scores)
    raise EngineError(f"engine {engine!r} cannot read {source.description}")


def drift_between_files_in_duckdb(
    reference_path: str | os.PathLike[str],
    current_path: str | os.PathLike[str],
    *,
    drop: Sequence[str] = (),
    thresholds: DriftThresholds | None = None,
    target_column: str | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    temp_directory: Path | None = None,
) -> DriftReport:
    """``core.drift.drift_between_files`` with both files streamed through DuckDB: the
    reference fitted one column at a time, the current side's statistics computed in DuckDB
    under ``memory_limit`` (spilling to ``temp_directory``)."""
    with DuckDBRunner(memory_limit=memory_limit, temp_directory=temp_directory) as runner:
        reference = file_relation(runner, str(reference_path), drop=tuple(drop))
        current = file_relation(runner, str(current_path), drop=tuple(drop))
        profile = fit_reference_in_engine(runner, reference, target=target_column)
        return compare_pushdown(profile, runner, current, thresholds)


def compare_drift_window(
    profile: ReferenceProfile,
    source: RecordSource,
    window: tuple[datetime, datetime, int],
    setting: str,
    sample: pd.DataFrame,
    thresholds: DriftThresholds | None = None,
    *,
    scores: pd.Series | np.ndarray | None = None,
    multivariate: bool = False,
) -> tuple[DriftReport, EngineName]:
    """The monitoring's comparison of a drift window ``(start, end, n_rows)``: in memory on
    its seeded ``sample`` (with the champion's ``scores`` on it), or, when ``choose_engine``
    picks another engine for ``setting`` (``RETRAIN_ENGINE``), on every record of the
    window where it lives (prediction drift still from ``scores`` on the sample).
    ``multivariate``: the dataset scores too, always on the sample (they subsample anyway)."""
    start, end, n_rows = window
    engine = choose_engine(setting, source, n_rows)
    if engine == "memory":
        return profile.compare(sample, thresholds, scores=scores, multivariate=multivariate), engine
    report = compare_window(profile, source, start, end, engine, thresholds, scores=scores)
    if multivariate:
        report.multivariate = profile_drift(
            profile.sample, profile.columns, sample, seed=profile.options.seed
        )
    return report, engine
