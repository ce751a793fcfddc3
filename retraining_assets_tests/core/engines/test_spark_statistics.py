"""The same SQL on Spark SQL (local mode) computes the in-memory report. Runs when pyspark and
Java are present: `pip install 'retraining-assets[spark]'` and Java 17 on PATH."""

from __future__ import annotations

import importlib.util
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from retraining_assets.core.drift import fit_reference
from retraining_assets.core.sources import FileRecordSource
from retraining_assets_tests.core.engines.equality import assert_same_report, records

if importlib.util.find_spec("pyspark") is None or shutil.which("java") is None:
    pytest.skip(
        "Spark test: needs pyspark and Java 17 (pip install 'retraining-assets[spark]')",
        allow_module_level=True,
    )


def test_spark_sql_computes_the_in_memory_report(tmp_path: Path) -> None:
    from retraining_assets.core.engines import compare_window

    path = tmp_path / "current.parquet"
    current = records(30_000, 0.2, seed=7)
    current.loc[3000:3100, "color"] = "purple"
    current.to_parquet(path)
    profile = fit_reference(records(20_000, 0.0, seed=8).drop(columns="ts"), target="label")
    source = FileRecordSource(path=str(path), time_column="ts")
    start, end = datetime(2024, 1, 2), datetime(2024, 1, 20)
    pushed = compare_window(profile, source, start, end, "spark")
    assert_same_report(profile.compare(source.load(start, end)).to_dict(), pushed.to_dict())
