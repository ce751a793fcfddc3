import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from retraining_assets.core.pipeline import Pipeline, configured_pipelines, user_pipeline
from retraining_assets.definitions import build_definitions
from retraining_assets.settings import Settings, load_settings

ROOT = Path(__file__).parents[2]


def test_dagster_postgres_really_installed() -> None:
    import dagster_postgres

    assert dagster_postgres.__version__ == "0.29.27"
    assert dg.__version__ == "1.13.27"


def test_code_location_loads_and_validates(tmp_path: Path) -> None:
    # a local DAGSTER_HOME, as `make dev` sets: the root dagster.yaml is the PostgreSQL one
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-m",
            "retraining_assets.definitions",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dg_finds_the_code_location(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    dg_cli = Path(sys.executable).parent / "dg"
    result = subprocess.run(
        [str(dg_cli), "list", "defs", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert '"demo/current_data"' in result.stdout
    assert "notify_run_failure" in result.stdout


def _elec2_settings(tmp_path: Path, elec2: Path) -> Settings:
    return load_settings(
        home=tmp_path / ".retrain",
        source_path=str(elec2),
        time_column="ts",
        target="class",
        pipeline_name="elec2",
    )


def test_two_pipelines_share_one_code_location(tmp_path: Path, elec2: Path) -> None:
    settings = _elec2_settings(tmp_path, elec2)
    pipelines = configured_pipelines(settings)
    assert [p.name for p in pipelines] == ["demo", "elec2"]
    defs = build_definitions(settings, pipelines)
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    for name in ("demo", "elec2"):
        assert {f"{name}/current_data", f"{name}/reference_data"} <= keys
        assert defs.resolve_job_def(f"{name}_monitoring_job") is not None
    elec2 = pipelines[1]
    assert elec2.spec.task == "binary" and "nswprice" in elec2.spec.numeric_features
    assert elec2.start == "1996-05-07"  # daily periods (the default) start with the data


def test_partition_granularity_is_a_setting(tmp_path: Path, elec2: Path) -> None:
    settings = load_settings(
        home=tmp_path / ".retrain",
        source_path=str(elec2),
        time_column="ts",
        target="class",
        partition="weekly",
    )
    pipeline: Pipeline = user_pipeline(settings)
    defs = build_definitions(settings, [pipeline])
    partitions = defs.resolve_job_def("records_monitoring_job").partitions_def
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
    assert partitions.cron_schedule == "0 0 * * 0"


def test_user_pipeline_needs_time_column_and_target(tmp_path: Path, elec2: Path) -> None:
    settings = load_settings(home=tmp_path / ".retrain", source_path=str(elec2))
    with pytest.raises(ValueError, match="RETRAIN_TIME_COLUMN and RETRAIN_TARGET"):
        user_pipeline(settings)
