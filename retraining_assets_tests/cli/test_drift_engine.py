"""`retrain drift --engine duckdb` streams the files through DuckDB and reports what
`--engine memory` (both files loaded whole) reports."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from retraining_assets.cli import main
from retraining_assets_tests.core.engines.equality import assert_same_report


@pytest.fixture
def demo_files(tmp_path: Path, small_stream) -> dict[str, Path]:
    from retraining_assets.core.demo import ABRUPT, DemoStream

    stream = DemoStream(rows_per_month=6000, end_month=small_stream.end_month)
    paths = {"reference": tmp_path / "reference.parquet", "shifted": tmp_path / "shifted.csv"}
    pd.concat([stream.generate(offset) for offset in range(3)]).to_parquet(paths["reference"])
    stream.generate(ABRUPT.first_offset).to_csv(paths["shifted"], index=False)
    return paths


def _report(files: dict[str, Path], engine: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, [
        "drift", str(files["reference"]), str(files["shifted"]), "--json", "--engine", engine,
        "--drop", "customer_id", "--drop", "event_time", "--target", "defaulted",
    ])  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)


def test_duckdb_engine_reports_what_memory_reports(demo_files) -> None:
    memory_exit, memory = _report(demo_files, "memory")
    duckdb_exit, pushed = _report(demo_files, "duckdb")
    assert memory_exit == duckdb_exit == 1 and pushed["drifted_features"]
    memory.pop("profile_hash"), pushed.pop("profile_hash")  # moments summed in another order
    assert_same_report(memory, pushed)


def test_too_small_memory_limit_is_a_clear_error(demo_files) -> None:
    result = CliRunner().invoke(main, [
        "drift", str(demo_files["reference"]), str(demo_files["shifted"]),
        "--engine", "duckdb", "--memory-limit", "1MB",
    ])  # fmt: skip
    assert result.exit_code == 2
    assert "memory_limit='1MB'" in result.output and "--memory-limit" in result.output
