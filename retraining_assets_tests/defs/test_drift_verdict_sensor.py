"""The retrain trigger's drift cause follows the configured dataset verdict
(RETRAIN_DRIFT_VERDICT), read from the drift_report metadata by the real sensor."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from retraining_assets.core.demo import ABRUPT, DemoStream
from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.definitions import build_definitions
from retraining_assets.defs.resources import ClockResource

STREAM = DemoStream(
    rows_per_month=1000, months=ABRUPT.first_offset + 1, end_month=pd.Timestamp("2024-12-01")
)
DRIFT_KEY = dg.AssetKey(["demo", "drift_report"])


def tick_after_the_abrupt_month(settings, platform_db) -> tuple[dict, dg.RunRequest]:
    """Reference, then monitoring of the abrupt shift's month, then one sensor tick."""
    STREAM.seed_database(platform_db)
    pipeline = demo_pipeline(settings, STREAM)
    defs = build_definitions(settings, [pipeline])
    partition = STREAM.partition_key(ABRUPT.first_offset)
    with dg.instance_for_test() as instance:
        defs.resolve_job_def("demo_reference_job").execute_in_process(instance=instance)
        result = defs.resolve_job_def("demo_monitoring_job").execute_in_process(
            instance=instance, partition_key=partition
        )
        assert result.success
        metadata = instance.get_latest_materialization_event(DRIFT_KEY).asset_materialization
        moment = pipeline.timescales.period_end(pd.Timestamp(partition).to_pydatetime())
        sensor = defs.resolve_sensor_def("demo_retraining_sensor")
        clock = ClockResource(moment=(moment + pd.Timedelta(minutes=30)).isoformat())
        with dg.build_sensor_context(
            instance=instance, resources={**defs.resources, "clock": clock}, definitions=defs
        ) as context:
            request = sensor(context)
    assert isinstance(request, dg.RunRequest) and request.partition_key == partition
    return {k: v.value for k, v in metadata.metadata.items()}, request


@pytest.mark.parametrize(
    ("update", "alarms"),
    [
        ({"drift_verdict": "univariate"}, True),
        # no champion yet, so no importances: every feature weighs alike, and a share of 1
        # needs every feature drifted, which the abrupt shift (3 features) is not
        ({"drift_verdict": "weighted", "drift_weighted_share": 1.0}, False),
    ],
)
def test_the_sensor_asks_for_drift_only_when_the_verdict_alarms(
    settings, platform_db, update: dict, alarms: bool
) -> None:
    metadata, request = tick_after_the_abrupt_month(settings.model_copy(update=update), platform_db)
    assert metadata["drift_detected"] is True  # the univariate rule sees the shift either way
    assert metadata["drift_verdict"] == update["drift_verdict"]
    assert metadata["drift_alarm"] is alarms
    assert 0.0 < metadata["drift_score"] <= 1.0
    causes = request.tags["retrain/causes"].split(",")
    assert ("drift" in causes) is alarms
    if not alarms:
        assert any("no feature importances" in s for s in metadata["drift_verdict_skipped"])


def test_the_estimated_verdict_without_a_champion_falls_back_to_the_drift_part(
    settings, platform_db
) -> None:
    update = {"drift_verdict": "estimated"}
    metadata, request = tick_after_the_abrupt_month(settings.model_copy(update=update), platform_db)
    assert metadata["drift_verdict"] == "estimated"
    assert metadata["drift_alarm"] is True  # the univariate part decides alone
    assert "drift" in request.tags["retrain/causes"].split(",")
    assert any(
        s.startswith("estimated: no champion yet") and "drift verdict alone decides" in s
        for s in metadata["drift_verdict_skipped"]
    )
