from pathlib import Path

import boto3
import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from retraining_assets.core.database import platform_engine
from retraining_assets.core.demo import ABRUPT, DemoStream
from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.core.reports import reports_root
from retraining_assets.core.schema import notification_outbox
from retraining_assets.definitions import build_definitions
from retraining_assets.settings import load_settings
from retraining_assets_tests import s3_server
from retraining_assets_tests.conftest import MONTHLY
from retraining_assets_tests.reports_client import serving_reports

STREAM = DemoStream(
    rows_per_month=1000, months=ABRUPT.first_offset + 1, end_month=pd.Timestamp("2024-12-01")
)
DRIFT_KEY = dg.AssetKey(["demo", "drift_report"])
s3_endpoint, bucket = s3_server.s3_endpoint, s3_server.bucket  # the shared fixtures


@pytest.fixture
def monitored(settings, platform_db):
    STREAM.seed_database(platform_db)
    pipeline = demo_pipeline(settings, STREAM)
    defs = build_definitions(settings, [pipeline])
    with dg.instance_for_test() as instance:
        defs.resolve_job_def("demo_reference_job").execute_in_process(instance=instance)
        yield defs, instance


def _month(defs, instance, offset: int, stream: DemoStream = STREAM) -> dg.AssetMaterialization:
    partition = stream.partition_key(offset)
    result = defs.resolve_job_def("demo_monitoring_job").execute_in_process(
        instance=instance, partition_key=partition
    )
    assert result.success
    # what a sensor does: read the latest materialization's metadata, no data load
    event = instance.get_latest_materialization_event(DRIFT_KEY)
    assert event.asset_materialization.partition == partition
    return event.asset_materialization


def _drift_notifications(engine: sa.Engine) -> list:
    query = sa.select(notification_outbox.c.subject).where(
        notification_outbox.c.event_type == "drift_detected"
    )
    with engine.connect() as connection:
        return connection.execute(query).scalars().all()


def test_abrupt_month_reports_drift_readably_and_notifies(monitored, platform_db, settings) -> None:
    defs, instance = monitored
    metadata = _month(defs, instance, ABRUPT.first_offset).metadata
    assert metadata["drift_detected"].value is True
    assert {"channel", "credit_score"} <= set(metadata["drifted_features"].value)
    # the UI links the full report and the plot on the report server
    html, png = metadata["html_report"].value, metadata["summary_png"].value
    assert html.startswith(f"{settings.reports_url}/reports/demo/")
    with serving_reports(settings) as get:
        assert get(html).text.count("<svg") >= 14  # a plot per feature
        assert get(png).content.startswith(b"\x89PNG")
    # locally the link's file is a plain file under the artifact root, readable without a server
    partition = STREAM.partition_key(ABRUPT.first_offset)
    local = reports_root(settings) / "demo" / partition / "drift.html"
    assert html.endswith(f"/reports/demo/{partition}/drift.html") and local.is_file()
    # the plot as short Markdown of the served file: the UI shows it inline, no dialog
    assert metadata["summary_plot"].value == f"![drift summary]({png})"
    assert "| channel" in metadata["report"].value
    subjects = _drift_notifications(platform_db)
    assert len(subjects) == 1 and subjects[0].startswith("Drift detected:")
    # materializing the same month again does not notify twice
    _month(defs, instance, ABRUPT.first_offset)
    assert len(_drift_notifications(platform_db)) == 1


def test_stable_month_reports_no_drift_and_stays_quiet(monitored, platform_db) -> None:
    defs, instance = monitored
    metadata = _month(defs, instance, 4).metadata
    assert metadata["drift_detected"].value is False
    assert metadata["drifted_features"].value == []
    assert _drift_notifications(platform_db) == []


def test_the_estimated_verdict_estimates_with_the_champions_own_estimator(
    settings, platform_db
) -> None:
    """With a champion, drift_report's ``estimated`` part estimates its metric from its stored
    estimator on the drift window; a champion never judged has no evaluation baseline (the one
    ``champion_performance`` and the trigger compare with), so the drift part decides and the
    verdict says that, not "no estimate"."""
    from retraining_assets_tests.conftest import SMALL_STREAM, trained_version, with_champion

    settings = settings.model_copy(update={"drift_verdict": "weighted+estimated"})
    SMALL_STREAM.seed_database(platform_db)
    defs = build_definitions(settings, [demo_pipeline(settings, SMALL_STREAM)])
    registry = defs.resources["platform"].registry()
    with_champion(registry, trained_version(registry, SMALL_STREAM, months=3))
    with dg.instance_for_test() as instance:
        defs.resolve_job_def("demo_reference_job").execute_in_process(instance=instance)
        result = defs.resolve_job_def("demo_monitoring_job").execute_in_process(
            instance=instance, partition_key=SMALL_STREAM.partition_key(4)
        )
        assert result.success
        event = instance.get_latest_materialization_event(DRIFT_KEY)
    metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    assert metadata["drift_verdict"] == "weighted+estimated"
    skipped = metadata.get("drift_verdict_skipped") or []
    assert not [s for s in skipped if s.startswith("weighted:")]  # the champion's importances
    assert [s for s in skipped if s.startswith("estimated:")] == [
        "estimated: no baseline metric stored with the model; the drift verdict alone decides"
    ]


def test_with_the_artifact_root_on_object_storage_the_report_is_written_to_the_bucket(
    tmp_path: Path, bucket: str
) -> None:
    settings = load_settings(
        home=tmp_path / ".retrain", artifact_root=f"s3://{bucket}/prod", artifact_key="k" * 64,
        **MONTHLY,
    )  # fmt: skip
    STREAM.seed_database(platform_engine(settings.platform_database_url))
    defs = build_definitions(settings, [demo_pipeline(settings, STREAM)])
    with dg.instance_for_test() as instance:
        defs.resolve_job_def("demo_reference_job").execute_in_process(instance=instance)
        html = _month(defs, instance, ABRUPT.first_offset).metadata["html_report"].value
    partition = STREAM.partition_key(ABRUPT.first_offset)
    key = f"prod/reports/demo/{partition}/drift.html"
    stored = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored.count(b"<svg") >= 14
    assert not (settings.home / "artifacts").exists() and not (settings.home / "reports").exists()
    # the link opens through a report server that reads the bucket, wherever the run was
    assert html == f"{settings.reports_url}/reports/demo/{partition}/drift.html"
    with serving_reports(settings) as get:
        assert get(html).content == stored
        assert get(html.replace("drift.html", "drift.png")).content.startswith(b"\x89PNG")


LASTING = DemoStream(
    rows_per_month=1000, months=ABRUPT.first_offset + 3, end_month=pd.Timestamp("2024-12-01")
)


@pytest.mark.parametrize("notify", ["onset", "every"])
def test_a_lasting_drift_pages_once_unless_every_period_is_asked_for(
    settings, platform_db, notify: str
) -> None:
    """The partner channel's shift persists: with ``onset`` its first month pages and the
    months it merely continues do not (the metadata says why); ``every`` pages each month."""
    LASTING.seed_database(platform_db)
    settings = settings.model_copy(update={"drift_notify": notify})
    defs = build_definitions(settings, [demo_pipeline(settings, LASTING)])
    with dg.instance_for_test() as instance:
        defs.resolve_job_def("demo_reference_job").execute_in_process(instance=instance)
        months = [
            _month(defs, instance, o, LASTING).metadata
            for o in range(ABRUPT.first_offset, LASTING.months)
        ]
    assert all(m["drift_alarm"].value for m in months)
    onset = LASTING.partition_key(ABRUPT.first_offset)
    assert {m["drift_episode_since"].value for m in months} == {onset}
    paged = [m["drift_paged"].value for m in months]
    reasons = [m["drift_page_reason"].value for m in months]
    assert len(_drift_notifications(platform_db)) == sum(paged)
    if notify == "every":
        assert paged == [True, True, True]
    else:
        assert paged == [True, False, False] and reasons[0] == "a new alarm"
        assert all(f"alarm raised on {onset} continues" in r for r in reasons[1:])
