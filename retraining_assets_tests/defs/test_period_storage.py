"""Through the real definitions: a period above RETRAIN_MATERIALIZE_MAX_ROWS is stored as a
validated description (JSON), one below it as a Parquet frame, and the drift verdict is the
same either way; a training window above RETRAIN_TRAINING_MAX_ROWS is read as a sample the
model version records."""

import json
from pathlib import Path

import dagster as dg
import pytest

from retraining_assets.core.database import platform_engine
from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.core.registry import Registry
from retraining_assets.core.splits import holdout_size
from retraining_assets.definitions import build_definitions
from retraining_assets.settings import Settings
from retraining_assets_tests.conftest import SMALL_STREAM

MONTH = SMALL_STREAM.partition_key(1)
ROWS = len(SMALL_STREAM.generate(1))  # the month's records (about 400)
# a drift window sampled to 300 of the month's 400 records: the description's statistics are
# computed on the same seeded sample as the drift report (its checks by the database)
SAMPLED = {"drift_max_records": 300, "drift_min_records": 100}


def _monitor(settings: Settings, storage: Path) -> dg.ExecuteInProcessResult:
    defs = build_definitions(settings, [demo_pipeline(settings, SMALL_STREAM)])
    storage.mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(storage)) as instance:
        assert defs.resolve_job_def("demo_reference_job").execute_in_process(instance=instance)
        result = defs.resolve_job_def("demo_monitoring_job").execute_in_process(
            instance=instance, partition_key=MONTH
        )
    assert result.success
    return result


def _metadata(result: dg.ExecuteInProcessResult, node: str) -> dict:
    (materialization,) = result.asset_materializations_for_node(node)
    return {key: value.value for key, value in materialization.metadata.items()}


@pytest.fixture
def both(seeded_demo, settings: Settings, tmp_path: Path) -> dict:
    """The month monitored with the threshold above and below its records."""
    runs = {}
    for name, limit in (("frame", 0), ("description", 100)):
        changed = settings.model_copy(update={**SAMPLED, "materialize_max_rows": limit})
        runs[name] = (_monitor(changed, tmp_path / name), tmp_path / name / "storage")
    return runs


def test_a_large_period_is_described_and_a_small_one_stored_as_parquet(both) -> None:
    frame_run, frame_storage = both["frame"]
    described_run, described_storage = both["description"]
    folder = ("demo", "current_data")
    assert [p.name for p in frame_storage.joinpath(*folder).iterdir()] == [f"{MONTH}.parquet"]
    assert [p.name for p in described_storage.joinpath(*folder).iterdir()] == [f"{MONTH}.json"]
    stored = json.loads(described_storage.joinpath(*folder, f"{MONTH}.json").read_text())
    # the demo's SQL period is validated by the database, every row; statistics on the sample
    assert stored["rows"] == stored["validated_rows"] == ROWS
    assert abs(stored["sample_rows"] - 300) <= 3
    assert "SELECT" in stored["query"] and "records" in stored["source"]
    assert set(stored["checks"]) >= {"schema", "target_valid", "non_empty"}
    assert all(stored["checks"].values())
    assert (
        0 <= stored["statistics"]["income"]["null_share"] <= 1
        and "mean" in stored["statistics"]["income"]
    )
    described = _metadata(described_run, "demo__current_data")
    assert described["dagster/row_count"] == ROWS and described["stored_as"] == "description"
    assert _metadata(frame_run, "demo__current_data")["dagster/row_count"] == ROWS
    # the checks ran on either path and block alike
    for run in (frame_run, described_run):
        assert all(e.passed for e in run.get_asset_check_evaluations() if e.check_name == "schema")


def test_the_drift_report_is_the_same_on_both_sides(both) -> None:
    reports = [_metadata(run, "demo__drift_report") for run, _ in both.values()]
    for key in (
        "drift_detected",
        "drifted_features",
        "drift_share",
        "n_current",
        "n_sampled",
        "n_window",
    ):
        assert reports[0][key] == reports[1][key]
    assert reports[0]["n_sampled"] < reports[0]["n_window"] == ROWS


def test_a_sampled_training_window_is_recorded_on_the_version(
    seeded_demo, settings: Settings, tmp_path: Path
) -> None:
    changed = settings.model_copy(
        update={"training_max_rows": 600, "model_families": ["random_forest"]}
    )
    defs = build_definitions(changed, [demo_pipeline(changed, SMALL_STREAM)])
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        assert defs.resolve_job_def("demo_reference_job").execute_in_process(instance=instance)
        result = defs.resolve_job_def("demo_retraining_job").execute_in_process(
            instance=instance, partition_key=SMALL_STREAM.partition_key(2)
        )
    assert result.success
    window = _metadata(result, "demo__training_data")
    n_window = sum(len(SMALL_STREAM.generate(month)) for month in range(3))  # about 1,200
    assert window["n_window"] == n_window and window["dagster/row_count"] == 600
    registry = Registry(
        platform_engine(changed.platform_database_url),
        changed.artifact_path,
        changed.artifact_key_path,
    )
    (version,) = registry.list_versions("demo")
    sample = version.params["training_sample"]
    assert sample["n_window"] == n_window and sample["n_read"] == 600 and sample["sampled"]
    assert sample["max_rows"] == 600 and sample["seed"] == window["training_sample"]["seed"]
    # the newest 20% of the whole window (under RETRAIN_HOLDOUT_RECORDS), every one read
    assert sample["n_holdout"] == holdout_size(n_window, changed.holdout_records)
