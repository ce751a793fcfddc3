"""`drift_report` computed by the source database (RETRAIN_ENGINE=sql) stores what the
in-memory engine stores for the same month."""

import dagster as dg
import pandas as pd

from retraining_assets.core.database import platform_engine
from retraining_assets.core.demo import ABRUPT, DemoStream
from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.definitions import build_definitions
from retraining_assets.settings import load_settings
from retraining_assets_tests.conftest import MONTHLY

STREAM = DemoStream(
    rows_per_month=1000, months=ABRUPT.first_offset + 1, end_month=pd.Timestamp("2024-12-01")
)
DRIFT_KEY = dg.AssetKey(["demo", "drift_report"])


def _drift_report(tmp_path, engine: str) -> tuple[dict, dict]:
    settings = load_settings(home=tmp_path / engine, engine=engine, **MONTHLY)
    pipeline = demo_pipeline(settings, STREAM)
    defs = build_definitions(settings, [pipeline])
    STREAM.seed_database(platform_engine(settings.platform_database_url))
    with dg.instance_for_test() as instance:
        defs.resolve_job_def("demo_reference_job").execute_in_process(instance=instance)
        result = defs.resolve_job_def("demo_monitoring_job").execute_in_process(
            instance=instance, partition_key=STREAM.partition_key(ABRUPT.first_offset)
        )
        assert result.success
        report = result.output_for_node("demo__drift_report")
        event = instance.get_latest_materialization_event(DRIFT_KEY)
        return report, event.asset_materialization.metadata


def test_sql_engine_stores_the_in_memory_verdict(tmp_path) -> None:
    memory, memory_metadata = _drift_report(tmp_path, "memory")
    pushed, pushed_metadata = _drift_report(tmp_path, "sql")
    assert pushed_metadata["drift_detected"].value is True
    for key in ("drift_detected", "drifted_features", "n_current"):
        assert pushed_metadata[key].value == memory_metadata[key].value
    for name, feature in memory["features"].items():
        assert pushed["features"][name]["ks_statistic"] == feature["ks_statistic"], name
        assert pushed["features"][name]["drifted"] == feature["drifted"], name
