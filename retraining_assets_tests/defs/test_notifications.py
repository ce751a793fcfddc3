"""The Dagster layer of notifications: a real failed run on an ephemeral instance feeds the
run-failure sensor, whose mail reaches a real SMTP server; the drain sensor empties the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from retraining_assets.core.database import platform_engine
from retraining_assets.core.notify import drift_detected
from retraining_assets.core.schema import notification_outbox
from retraining_assets.defs.notifications import (
    DRAIN_SENSOR,
    RESOURCE_KEY,
    RUN_FAILURE_SENSOR,
    NotifierResource,
    build_notification_defs,
)
from retraining_assets.settings import load_settings
from retraining_assets_tests.peers import SmtpPeer

UI = "http://dagster.test:3000"
LEAKED_VALUE = "73456.25"
LEAKED_SECRET = "hunter2-db-pass"


@dg.asset
def boom() -> None:
    # What a careless error message might hold: a record value and a connection string.
    raise ValueError(
        f"cannot score row {{'income': {LEAKED_VALUE}}} via postgresql://u:{LEAKED_SECRET}@db/x"
    )


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


@pytest.fixture
def resource(tmp_path: Path, smtp_server: SmtpPeer) -> NotifierResource:
    return NotifierResource(
        database_url=f"sqlite:///{tmp_path}/p.db",
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_security="none",
        notify_to=["ops@example.com"],
        notify_from="dagster@example.com",
        ui_base_url=UI,
    )


def failed_run(instance: dg.DagsterInstance) -> tuple[dg.DagsterRun, dg.DagsterEvent]:
    result = dg.materialize([boom], instance=instance, raise_on_error=False)
    assert not result.success
    (record,) = instance.get_records_for_run(
        result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    return instance.get_run_by_id(result.run_id), record.event_log_entry.dagster_event


def evaluate_failure_sensor(
    defs: dg.Definitions, instance: dg.DagsterInstance, resource: NotifierResource
) -> object:
    run, event = failed_run(instance)
    context = dg.build_run_status_sensor_context(
        sensor_name=RUN_FAILURE_SENSOR,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=run,
        resources={RESOURCE_KEY: resource},
    )
    return run, defs.resolve_sensor_def(RUN_FAILURE_SENSOR)(context)


def outbox(resource: NotifierResource) -> list[sa.Row]:
    with platform_engine(resource.settings().platform_database_url).connect() as connection:
        return connection.execute(sa.select(notification_outbox)).all()


def test_a_failed_run_is_mailed_with_its_job_step_error_and_link(
    instance: dg.DagsterInstance, resource: NotifierResource, smtp_server: SmtpPeer
) -> None:
    run, outcome = evaluate_failure_sensor(build_notification_defs(), instance, resource)

    assert outcome is None
    (received,) = smtp_server.messages
    mail = received.email
    body = mail.get_body(("plain",)).get_content()
    assert mail["Subject"] == f"Run failed: {run.job_name} ({run.run_id[:8]})"
    assert received.rcpt_tos == ["ops@example.com"]
    assert f"{UI}/runs/{run.run_id}" in body
    assert "Failed steps: boom" in body and "ValueError: cannot score row" in body
    assert LEAKED_VALUE not in mail.as_string() and LEAKED_SECRET not in mail.as_string()
    (row,) = outbox(resource)
    assert (row.event_type, row.status, row.idempotency_key) == (
        "run_failed",
        "sent",
        f"run_failed:{run.run_id}",
    )


def test_the_same_failure_seen_twice_is_mailed_once(
    instance: dg.DagsterInstance, resource: NotifierResource, smtp_server: SmtpPeer
) -> None:
    defs = build_notification_defs()
    run, event = failed_run(instance)
    sensor = defs.resolve_sensor_def(RUN_FAILURE_SENSOR)
    for _ in range(2):  # e.g. the sensor's cursor was reset
        sensor(
            dg.build_run_status_sensor_context(
                sensor_name=RUN_FAILURE_SENSOR,
                dagster_event=event,
                dagster_instance=instance,
                dagster_run=run,
                resources={RESOURCE_KEY: resource},
            )
        )
    assert len(smtp_server.messages) == 1 and len(outbox(resource)) == 1


def test_failures_of_unwatched_jobs_are_skipped(
    instance: dg.DagsterInstance, resource: NotifierResource, smtp_server: SmtpPeer
) -> None:
    defs = build_notification_defs(job_names=["retrain_job"])
    _, outcome = evaluate_failure_sensor(defs, instance, resource)
    assert isinstance(outcome, dg.SkipReason) and "not watched" in outcome.skip_message
    assert smtp_server.messages == [] and outbox(resource) == []


def test_the_drain_sensor_delivers_a_pending_notification(
    instance: dg.DagsterInstance, resource: NotifierResource, smtp_server: SmtpPeer
) -> None:
    message = drift_detected(pipeline="demo", partition="2025-03", features=["income"])
    resource.notifier().enqueue(message)  # recorded, not yet delivered (e.g. SMTP was down)
    context = dg.build_sensor_context(instance=instance, resources={RESOURCE_KEY: resource})

    outcome = build_notification_defs().resolve_sensor_def(DRAIN_SENSOR)(context)

    assert isinstance(outcome, dg.SkipReason)
    assert outcome.skip_message.startswith("outbox: 1 sent, 0 to retry, 0 given up")
    assert [m.email["Subject"] for m in smtp_server.messages] == [message.subject]
    assert [row.status for row in outbox(resource)] == ["sent"]


@pytest.mark.parametrize("running", [True, False])
def test_sensors_start_running_unless_automation_is_off(tmp_path: Path, running: bool) -> None:
    defs = build_notification_defs(
        settings=load_settings(home=tmp_path, automation_running=running)
    )
    dg.Definitions.validate_loadable(defs)
    expected = dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED
    for name in (RUN_FAILURE_SENSOR, DRAIN_SENSOR):
        assert defs.resolve_sensor_def(name).default_status == expected
    assert defs.resolve_sensor_def(DRAIN_SENSOR).minimum_interval_seconds == 60


def test_the_resource_falls_back_to_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAIN_SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("RETRAIN_NOTIFY_TO", "a@example.com,b@example.com")
    resource = NotifierResource(database_url=f"sqlite:///{tmp_path}/p.db", smtp_port=2525)
    settings = resource.settings()
    assert (settings.smtp_host, settings.smtp_port) == ("mail.example.com", 2525)
    assert resource.notifier().recipients == ["a@example.com", "b@example.com"]
    assert sorted(resource.notifier().dispatcher.channels) == ["log", "smtp"]
