"""``estimated_performance`` materializes through the real definitions: the champion's
estimate next to the realized metric, and a named skip where nothing can be estimated."""

import dagster as dg
import pytest

from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.core.reference import ReferenceStore
from retraining_assets.definitions import build_definitions
from retraining_assets.defs.signals import gather_signals
from retraining_assets_tests.conftest import SMALL_STREAM, trained_version

KEY = dg.AssetKey(["demo", "estimated_performance"])


def _champion(defs: dg.Definitions) -> int:
    registry = defs.resources["platform"].registry()
    version = trained_version(registry, SMALL_STREAM, months=3)
    registry.move_alias(
        "demo",
        "champion",
        version,
        expected_current=None,
        by="test",
        actual_user="test",
        reason="test champion",
    )
    return version


def _monitor(defs: dg.Definitions, instance: dg.DagsterInstance, offset: int) -> dict:
    result = defs.resolve_job_def("demo_monitoring_job").execute_in_process(
        instance=instance, partition_key=SMALL_STREAM.partition_key(offset)
    )
    assert result.success
    event = instance.get_latest_materialization_event(KEY)
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _reference_then_monitor(defs: dg.Definitions, instance: dg.DagsterInstance) -> tuple:
    """The reference job, then the fifth month monitored: estimated_performance's metadata
    values and champion_performance's metadata."""
    defs.resolve_job_def("demo_reference_job").execute_in_process(instance=instance)
    metadata = _monitor(defs, instance, 4)
    live = instance.get_latest_materialization_event(
        dg.AssetKey(["demo", "champion_performance"])
    ).asset_materialization.metadata
    return metadata, live


@pytest.fixture
def monitored(settings, platform_db):
    SMALL_STREAM.seed_database(platform_db)
    return settings


def test_the_estimate_sits_next_to_the_realized_metric(monitored) -> None:
    defs = build_definitions(monitored, [demo_pipeline(monitored, SMALL_STREAM)])
    version = _champion(defs)
    with dg.instance_for_test() as instance:
        metadata, live = _reference_then_monitor(defs, instance)
    assert metadata["champion_version"] == version and metadata["metric"] == "accuracy"
    assert metadata["method"] == "cbpe" and metadata["skipped"] == "-"
    estimate, realized = metadata["estimated_metric"], metadata["realized"]
    assert metadata["lower"] < estimate < metadata["upper"]
    # a stable month: the estimate made without labels is near what the labels say
    assert abs(estimate - realized) < 0.06
    assert metadata["dagster/row_count"] == metadata["labelled_rows"] > 300
    assert set(metadata["estimates"]) == {"accuracy", "f1", "roc_auc"}
    # champion_performance shows the estimate of its own window next to the live metric
    assert abs(live["estimated"].value - live["live_metric"].value) < 0.06


def test_with_a_label_delay_the_realized_metric_waits_and_champion_performance_sees_no_labels(
    monitored,
) -> None:
    delayed = monitored.model_copy(update={"label_delay": "100000d"})  # labels never arrive
    pipeline = demo_pipeline(delayed, SMALL_STREAM)
    defs = build_definitions(delayed, [pipeline])
    _champion(defs)
    with dg.instance_for_test() as instance:
        metadata, live = _reference_then_monitor(defs, instance)
        # what the retraining sensor gathers: the estimate stands in for the missing labels,
        # and no record counts as a new labelled one
        registry = defs.resources["platform"].registry()
        signals = gather_signals(
            instance, pipeline, registry, defs.resources["records"].source("demo"),
            SMALL_STREAM.partition_key(4),
            window_end=SMALL_STREAM.month_start(5).to_pydatetime(),
            now=SMALL_STREAM.month_start(5).to_pydatetime(),
        )  # fmt: skip
    assert signals.estimated_metric == metadata["estimated_metric"]
    assert signals.live_metric is None and signals.new_records == 0
    assert metadata["realized"] == "n/a" and metadata["labelled_rows"] == 0
    assert isinstance(metadata["estimated_metric"], float)
    assert live["live_metric"].value == "n/a"


def test_a_version_without_a_stored_estimator_is_a_named_skip(monitored) -> None:
    defs = build_definitions(monitored, [demo_pipeline(monitored, SMALL_STREAM)])
    _champion(defs)
    with dg.instance_for_test() as instance:
        defs.resolve_job_def("demo_reference_job").execute_in_process(instance=instance)
        store = ReferenceStore(monitored.artifact_path)
        reference = store.load("demo")
        store.save("demo", reference.__class__(**{**reference.__dict__, "estimator": None}))
        metadata = _monitor(defs, instance, 4)
    assert metadata["estimated_metric"] == "n/a"
    assert metadata["skipped"] == "the version was registered without an estimator"
    assert isinstance(metadata["realized"], float)  # the labels still give the realized one


def test_a_period_too_large_to_copy_is_estimated_on_its_seeded_sample(monitored) -> None:
    """Above RETRAIN_MATERIALIZE_MAX_ROWS the period is never loaded whole: the estimate is
    made on the seeded sample current_data validated (RETRAIN_DRIFT_MAX_RECORDS)."""
    large = monitored.model_copy(
        update={"materialize_max_rows": 100, "drift_max_records": 200, "drift_min_records": 100}
    )
    defs = build_definitions(large, [demo_pipeline(large, SMALL_STREAM)])
    _champion(defs)
    with dg.instance_for_test() as instance:
        metadata, _ = _reference_then_monitor(defs, instance)
    assert metadata["period_rows"] > 300  # the month's records
    assert abs(metadata["dagster/row_count"] - 200) <= 20  # about the sample's size
    assert metadata["lower"] < metadata["estimated_metric"] < metadata["upper"]
