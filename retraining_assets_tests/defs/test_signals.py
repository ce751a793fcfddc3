"""``gather_signals`` with a label delay: the live metric (and its baseline) come from the
newest period whose labels have all arrived, scored after they did; the estimate from the
newest period, whose labels are still pending."""

from datetime import datetime

import dagster as dg
import pytest

from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.definitions import build_definitions
from retraining_assets.defs.signals import gather_signals, labelled_partition
from retraining_assets_tests.conftest import SMALL_STREAM, trained_version, with_champion

APRIL, MAY = SMALL_STREAM.partition_key(3), SMALL_STREAM.partition_key(4)
MAY_MONITORED = datetime(2024, 5, 1, 0, 15)
JUNE_MONITORED = datetime(2024, 6, 1, 0, 15)  # a month after April ended: its labels are in


def _run(defs, instance, partition: str, now: datetime, assets: list[str] | None = None):
    """The monitoring job (or the assets a labelled-performance run selects) at ``now``."""
    result = defs.resolve_job_def("demo_monitoring_job").execute_in_process(
        instance=instance,
        partition_key=partition,
        asset_selection=[dg.AssetKey(["demo", a]) for a in assets] if assets else None,
        run_config={"resources": {"clock": {"config": {"moment": now.isoformat()}}}},
    )
    assert result.success
    return {
        event.asset_key.path[-1]: {
            k: v.value for k, v in event.step_materialization_data.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }


@pytest.fixture
def delayed(settings, platform_db):
    SMALL_STREAM.seed_database(platform_db)
    delayed = settings.model_copy(update={"label_delay": "1M"})
    pipeline = demo_pipeline(delayed, SMALL_STREAM)
    defs = build_definitions(delayed, [pipeline])
    registry = defs.resources["platform"].registry()
    with_champion(registry, trained_version(registry, SMALL_STREAM, months=3))
    with dg.instance_for_test() as instance:
        defs.resolve_job_def("demo_reference_job").execute_in_process(instance=instance)
        yield pipeline, defs, instance, registry


def _signals(pipeline, defs, instance, registry):
    return gather_signals(
        instance, pipeline, registry, defs.resources["records"].source("demo"), MAY,
        window_end=datetime(2024, 6, 1), now=JUNE_MONITORED,
    )  # fmt: skip


def test_the_live_metric_comes_from_the_labels_complete_period(delayed) -> None:
    pipeline, defs, instance, registry = delayed
    assert labelled_partition(pipeline, MAY, JUNE_MONITORED) == APRIL
    early = _run(defs, instance, APRIL, MAY_MONITORED)["champion_performance"]
    may = _run(defs, instance, MAY, JUNE_MONITORED)
    # scored when each period ended: only the records whose labels had arrived (the
    # drift window reaches back a month to 500 records; that month's labels were in)
    for partial in (early, may["champion_performance"]):
        assert 0 < partial["labelled_rows"] < partial["n_sampled"]
        assert partial["labels_complete"] is False
    signals = _signals(pipeline, defs, instance, registry)
    # April's only score so far was made before its labels were in: no live metric yet, and
    # May's partial one is not read; May's estimate stands in
    assert signals.live_metric is None and signals.baseline_metric is None
    assert signals.estimated_metric == may["estimated_performance"]["estimated_metric"]

    labelled = _run(
        defs, instance, APRIL, JUNE_MONITORED, ["champion_performance", "estimated_performance"]
    )
    live = labelled["champion_performance"]
    assert live["labels_complete"] is True and live["labelled_rows"] == live["n_sampled"]
    assert isinstance(labelled["estimated_performance"]["realized"], float)  # beside the estimate
    signals = _signals(pipeline, defs, instance, registry)
    assert signals.live_metric == live["live_metric"]
    # (the test champion was registered without an evaluation: no baseline to read)
    assert live["baseline_metric"] == "n/a" and signals.baseline_metric is None
    assert signals.estimated_metric == may["estimated_performance"]["estimated_metric"]


def test_without_a_delay_the_live_metric_is_the_partitions_own(settings) -> None:
    pipeline = demo_pipeline(settings, SMALL_STREAM)
    assert labelled_partition(pipeline, MAY, JUNE_MONITORED) == MAY
    # an older partition than the labels-complete one is read as itself, never a later one
    delayed = demo_pipeline(settings.model_copy(update={"label_delay": "1M"}), SMALL_STREAM)
    assert labelled_partition(delayed, SMALL_STREAM.partition_key(1), JUNE_MONITORED) == (
        SMALL_STREAM.partition_key(1)
    )
    assert labelled_partition(delayed, MAY, datetime(2024, 2, 1)) is None
