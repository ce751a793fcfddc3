"""Notifier against real peers: aiosmtpd (plain, STARTTLS, implicit TLS, login) and a local
HTTP server for the Slack and Teams webhooks; the outbox in a SQLite file."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from retraining_assets.core.database import make_engine, platform_engine
from retraining_assets.core.lifecycle import how_to_decide
from retraining_assets.core.notify import (
    ChannelResult,
    Delivery,
    DrainResult,
    Message,
    Notifier,
    SmtpChannel,
    WebhookChannel,
    notify_test,
    slack_webhook,
    templates,
)
from retraining_assets.core.schema import notification_outbox
from retraining_assets.settings import Settings, load_settings
from retraining_assets_tests.peers import (
    SMTP_PASSWORD,
    SMTP_USER,
    Certificate,
    SmtpPeer,
    WebhookPeer,
    free_port,
)

ADMINS = ["ops@example.com", "ml-lead@example.com"]


class Clock:
    """A controllable clock: retries become due when the test says so, not after a sleep."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, 12, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings from keyword arguments (the shared conftest isolates RETRAIN_* variables)."""

    def make(**overrides: object) -> Settings:
        defaults = {
            "home": tmp_path,
            "database_url": f"sqlite:///{tmp_path}/p.db",
            "notify_to": ADMINS,
            "notify_from": "retrain@example.com",
        }
        return load_settings(**{**defaults, **overrides})

    return make


def smtp_settings(peer: SmtpPeer, **overrides: object) -> dict[str, object]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": peer.port,
        "smtp_security": peer.security,
        **overrides,
    }


def make_notifier(
    settings: Settings, certificate: Certificate | None = None, **options: object
) -> Notifier:
    return Notifier.from_settings(
        settings,
        ssl_context=certificate.client_context() if certificate else None,
        sleep=lambda _seconds: None,
        **options,
    )


def outbox_rows(settings: Settings) -> list[sa.Row]:
    with platform_engine(settings.platform_database_url).connect() as connection:
        return connection.execute(
            sa.select(notification_outbox).order_by(notification_outbox.c.id)
        ).all()


def a_webhook(url: str, sleeps: list[float]) -> WebhookChannel:
    return slack_webhook(url, sleep=sleeps.append, timeout=5.0)


def a_message(key: str = "drift:demo:2025-01") -> Message:
    return templates.drift_detected(
        pipeline="demo",
        partition="2025-01",
        features=["income", "utilization"],
        n_features=12,
        report_url="http://localhost:3000/assets/demo/drift_report",
        key=key,
    )


# --- templates -----------------------------------------------------------------------------


def every_message() -> list[Message]:
    return [
        a_message(),
        templates.retraining_started(
            pipeline="demo",
            reasons=["drift in 2 features"],
            models=["random_forest", "xgboost"],
            run_id="r1",
        ),
        templates.retraining_completed(
            pipeline="demo", best="xgboost", run_id="r1", metrics={"xgboost": {"accuracy": 0.91}}
        ),
        templates.promotion_pending(
            pipeline="demo",
            candidate="v7",
            champion="v6",
            metric="accuracy",
            lift=0.07,
            decision="promote",
        ),
        templates.promoted(pipeline="demo", version="v7", previous="v6"),
        templates.approval_required(
            pipeline="demo",
            candidate="v7",
            champion="v6",
            metric="accuracy",
            lift=0.03,
            min_lift=0.05,
            how=how_to_decide("demo", 7),
        ),
        templates.rolled_back(
            pipeline="demo", version="v6", previous="v7", by="alice", reason="live accuracy dropped"
        ),
        templates.run_failed(
            job_name="retrain_job",
            run_id="abcd1234-ef",
            error="KeyError",
            ui_base_url="http://dagster:3000/",
        ),
    ]


@pytest.mark.parametrize(
    ("run_id", "shown"),
    [
        ("70314625-c137-47d6-9e9d-ea9c63002cb0", "70314625"),  # all digits: not a data value
        ("abcd1234-ef", "abcd1234"),
        ("ab\r\nBcc: x@y-1", "abBccxy-"),  # nothing but letters, digits and dashes
    ],
)
def test_a_failed_runs_subject_shows_its_id_as_the_ui_does(run_id: str, shown: str) -> None:
    message = templates.run_failed(job_name="retrain_job", run_id=run_id, ui_base_url="http://ui")
    assert message.subject.endswith(f"retrain_job ({shown})")


def test_every_subject_starts_with_its_fixed_ascii_word() -> None:
    subjects = [message.subject for message in every_message()]
    words = [
        "Drift detected:",
        "Retraining started:",
        "Retraining completed:",
        "Promotion pending:",
        "Promoted:",
        "Approval required:",
        "Rolled back:",
        "Run failed:",
    ]
    assert [s.split(":")[0] + ":" for s in subjects] == words
    assert all(subject.isascii() for subject in subjects)
    assert len({message.key for message in every_message()}) == len(words)


def test_templates_carry_the_facts_in_both_parts() -> None:
    drift, *_, approval, rollback, failure = every_message()
    for part in (drift.text, drift.html):
        assert "income" in part and "utilization" in part and "2025-01" in part
        assert "http://localhost:3000/assets/demo/drift_report" in part
    assert "retrain approve 7 --pipeline demo --by USER --reason TEXT" in approval.text
    assert "retrain reject 7 --pipeline demo --by USER --reason TEXT" in approval.text
    assert "+3.0%" in approval.text and "+5.0%" in approval.html
    assert "live accuracy dropped" in rollback.text
    assert "http://dagster:3000/runs/abcd1234-ef" in failure.text
    assert "href='http://dagster:3000/runs/abcd1234-ef'" in failure.html


def test_error_summaries_keep_names_and_drop_values_and_secrets() -> None:
    error = (
        "ValueError: bad row {'income': 52000.5, 'ssn': '123-45-6789'} in column "
        "'income' from postgresql://admin:hunter2@db/x password=hunter2 total 98765.43\n"
        "Traceback line with more data 4242.42"
    )
    summary = templates.error_summary(error)
    assert summary.startswith("ValueError: bad row")
    assert "'income'" in summary  # a column name is useful and allowed
    for leaked in ("52000.5", "123-45-6789", "hunter2", "98765.43", "4242.42"):
        assert leaked not in summary


# --- SMTP ----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_smtp_over_tls_with_login_delivers_both_parts_to_every_recipient(
    security: str, certificate: Certificate, make_settings: Callable[..., Settings]
) -> None:
    peer = SmtpPeer(security=security, certificate=certificate, require_login=True).start()
    try:
        config = make_settings(
            **smtp_settings(peer, smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD)
        )
        delivery = make_notifier(config, certificate, subject_prefix="[ml]").notify(a_message())
    finally:
        peer.stop()

    assert delivery.status == "sent"
    assert [r.channel for r in delivery.results] == ["log", "smtp"]
    (received,) = peer.messages
    assert sorted(received.rcpt_tos) == sorted(ADMINS)
    email = received.email
    assert email["Subject"].startswith("[ml] Drift detected: demo 2025-01")
    assert email["From"] == "retrain@example.com"
    assert email["To"] == ", ".join(ADMINS)
    assert email["X-Retraining-Event"] == "drift_detected"
    plain = email.get_body(("plain",)).get_content()
    html = email.get_body(("html",)).get_content()
    assert "income, utilization" in plain and "<table" in html
    assert outbox_rows(config)[0].status == "sent"


def test_smtp_without_tls_refuses_login_before_tls(
    certificate: Certificate, make_settings: Callable[..., Settings]
) -> None:
    """The password is never sent over a plain connection: the server refuses, we record it."""
    peer = SmtpPeer(security="starttls", certificate=certificate, require_login=True).start()
    try:
        config = make_settings(
            **smtp_settings(
                peer, smtp_security="none", smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD
            )
        )
        delivery = make_notifier(config).notify(a_message())
    finally:
        peer.stop()
    assert delivery.status == "pending" and peer.messages == []
    (failure,) = [r for r in delivery.results if not r.ok]
    assert failure.channel == "smtp" and "smtp: 127.0.0.1" in failure.error
    assert SMTP_PASSWORD not in failure.error


def test_wrong_smtp_password_is_reported_without_the_password(
    certificate: Certificate, make_settings: Callable[..., Settings]
) -> None:
    peer = SmtpPeer(security="starttls", certificate=certificate, require_login=True).start()
    wrong = "Wr0ng-Passw0rd-42"
    try:
        config = make_settings(**smtp_settings(peer, smtp_username=SMTP_USER, smtp_password=wrong))
        delivery = make_notifier(config, certificate).notify(a_message())
    finally:
        peer.stop()
    row = outbox_rows(config)[0]
    assert delivery.status == "pending" and row.status == "pending"
    assert "login as 'mailer' refused (535" in row.last_error
    assert wrong not in repr(tuple(row)) and wrong not in repr(delivery)


# --- webhooks ------------------------------------------------------------------------------


def test_slack_and_teams_webhooks_receive_their_formats(
    webhook_server: WebhookPeer, make_settings: Callable[..., Settings]
) -> None:
    config = make_settings(
        slack_webhook_url=webhook_server.url("/services/T0/B0/slack-token"),
        teams_webhook_url=webhook_server.url("/workflows/teams-token"),
    )
    delivery = make_notifier(config).notify(a_message())

    assert delivery.status == "sent"
    assert [r.channel for r in delivery.results] == ["log", "slack", "teams"]
    slack, teams = webhook_server.posts
    assert slack.path == "/services/T0/B0/slack-token"
    assert slack.body["text"].startswith("*Drift detected: demo 2025-01")
    card = teams.body["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][0]["text"].startswith("Drift detected:")


def test_webhook_retries_503_with_exponential_backoff_then_succeeds() -> None:
    sleeps: list[float] = []
    with WebhookPeer(statuses=[503, 503, 200]) as peer:
        channel = a_webhook(peer.url("/hook"), sleeps)
        channel.send(a_message(), [])
    assert len(peer.posts) == 3
    assert sleeps == [1.0, 2.0]


def test_webhook_retries_are_bounded_and_the_error_masks_the_url() -> None:
    sleeps: list[float] = []
    with WebhookPeer(statuses=[503]) as peer:
        channel = a_webhook(peer.url("/services/SECRET-TOKEN"), sleeps)
        with pytest.raises(Exception) as raised:
            channel.send(a_message(), [])
    assert len(peer.posts) == channel.attempts == 3 and len(sleeps) == 2
    message = str(raised.value)
    assert message.startswith("slack: http://127.0.0.1:") and "HTTP 503" in message
    assert "SECRET-TOKEN" not in message and "after 3 attempt(s)" in message


def test_webhook_client_errors_are_not_retried() -> None:
    with WebhookPeer(statuses=[404]) as peer:
        channel = a_webhook(peer.url("/gone"), [])
        with pytest.raises(Exception, match="HTTP 404"):
            channel.send(a_message(), [])
    assert len(peer.posts) == 1


# --- outbox: durability, retries, idempotency, claims --------------------------------------


def test_smtp_down_keeps_the_message_and_the_drain_delivers_it_exactly_once(
    webhook_server: WebhookPeer, make_settings: Callable[..., Settings]
) -> None:
    peer = SmtpPeer()  # not started: the port refuses connections
    config = make_settings(**smtp_settings(peer), slack_webhook_url=webhook_server.url("/hook"))
    clock = Clock()
    notifier = make_notifier(config, clock=clock)

    delivery = notifier.notify(a_message())  # must not raise

    assert delivery.status == "pending"
    (row,) = outbox_rows(config)
    assert row.status == "pending" and row.attempts == 1
    assert row.channel_status == {"log": "sent", "smtp": "failed", "slack": "sent"}
    assert row.last_error.startswith(f"smtp: 127.0.0.1:{peer.port} (none):")
    assert notifier.drain().sent == 0  # not due yet: backoff

    peer.start()
    try:
        clock.advance(notifier.retry_delay)
        first = notifier.drain()
        clock.advance(3600)
        second = notifier.drain()
    finally:
        peer.stop()

    assert (first.sent, second.sent) == (1, 0)
    assert len(peer.messages) == 1
    assert len(webhook_server.posts) == 1  # slack had succeeded: not re-sent
    (row,) = outbox_rows(config)
    assert (
        row.status == "sent"
        and row.attempts == 2
        and row.sent_at == clock.now - timedelta(seconds=3600)
    )


def test_the_same_event_twice_is_notified_once(
    smtp_server: SmtpPeer, make_settings: Callable[..., Settings]
) -> None:
    notifier = make_notifier(make_settings(**smtp_settings(smtp_server)))
    first = notifier.notify(a_message(key="promotion:demo:v7"))
    second = notifier.notify(a_message(key="promotion:demo:v7"))
    assert (first.status, second.status) == ("sent", "duplicate")
    assert first.outbox_id == second.outbox_id
    assert len(smtp_server.messages) == 1


class RacingChannel:
    """Lets a rival worker act *while* this delivery is in progress: a deterministic race."""

    name = "race"

    def __init__(self, rival: Callable[[], object]) -> None:
        self.rival = rival
        self.rival_outcomes: list[object] = []

    def send(self, message: Message, recipients: list[str]) -> None:
        self.rival_outcomes.append(self.rival())

    def secrets(self) -> tuple[str, ...]:
        return ()


def test_a_worker_racing_a_delivery_cannot_claim_it(
    smtp_server: SmtpPeer, make_settings: Callable[..., Settings]
) -> None:
    """Two drains both saw the row unclaimed (attempts 0); the second to claim gets nothing."""
    config = make_settings(**smtp_settings(smtp_server))
    engine = platform_engine(config.platform_database_url)
    rival = make_notifier(config)
    holder: dict[str, int] = {}
    racing = RacingChannel(lambda: rival.deliver(holder["id"], seen_attempts=0))
    smtp = SmtpChannel("127.0.0.1", smtp_server.port, "retrain@example.com", security="none")
    notifier = Notifier(engine, [racing, smtp], recipients=ADMINS)
    holder["id"], _ = notifier.enqueue(a_message())

    delivery = notifier.deliver(holder["id"], seen_attempts=0)

    assert delivery.status == "sent"
    (rival_delivery,) = racing.rival_outcomes
    assert rival_delivery.status == "busy" and rival_delivery.results == ()
    assert rival.drain() == DrainResult()  # in flight, then sent: never due for the rival
    assert len(smtp_server.messages) == 1
    assert outbox_rows(config)[0].attempts == 1


def test_a_retry_racing_a_success_does_not_resend(
    smtp_server: SmtpPeer, make_settings: Callable[..., Settings]
) -> None:
    """A drain that read the row before ``notify`` finished delivering it gets ``busy``."""
    config = make_settings(**smtp_settings(smtp_server))
    rival = make_notifier(config)
    racing = RacingChannel(rival.drain)
    notifier = Notifier(platform_engine(config.platform_database_url), [racing], recipients=ADMINS)
    assert notifier.notify(a_message()).status == "sent"
    assert racing.rival_outcomes == [DrainResult()]
    assert rival.drain() == DrainResult()


def test_concurrent_drains_deliver_each_message_once(
    smtp_server: SmtpPeer, make_settings: Callable[..., Settings]
) -> None:
    config = make_settings(**smtp_settings(smtp_server))
    notifier = make_notifier(config)
    for month in range(1, 6):
        notifier.enqueue(a_message(key=f"drift:demo:2025-0{month}"))
    barrier = threading.Barrier(2)
    results = []

    def drain() -> None:
        barrier.wait()
        results.append(make_notifier(config).drain())

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(result.sent for result in results) == 5
    assert len(smtp_server.messages) == 5
    assert {row.status for row in outbox_rows(config)} == {"sent"}


def test_a_message_is_failed_after_max_attempts_and_a_larger_limit_revives_it(
    make_settings: Callable[..., Settings],
) -> None:
    peer = SmtpPeer()
    config = make_settings(**smtp_settings(peer))
    clock = Clock()
    notifier = make_notifier(config, clock=clock, max_attempts=2)
    notifier.notify(a_message())
    clock.advance(3600)
    assert notifier.drain().failed == 1
    assert outbox_rows(config)[0].status == "failed"
    clock.advance(3600)
    assert notifier.drain() == DrainResult()  # nothing left at this limit

    peer.start()
    try:
        assert notifier.drain(max_attempts=3).sent == 1
    finally:
        peer.stop()
    assert len(peer.messages) == 1 and outbox_rows(config)[0].attempts == 3


def test_a_crashed_workers_lease_expires_and_the_row_is_delivered(
    smtp_server: SmtpPeer, make_settings: Callable[..., Settings]
) -> None:
    config = make_settings(**smtp_settings(smtp_server))
    clock = Clock()
    notifier = make_notifier(config, clock=clock)
    row_id, _ = notifier.enqueue(a_message())
    assert notifier.claim(row_id, seen_attempts=0)  # a worker claims, then dies
    assert notifier.drain().sent == 0 and smtp_server.messages == []
    clock.advance(notifier.lease.total_seconds() + 1)
    assert notifier.drain().sent == 1 and len(smtp_server.messages) == 1


def test_an_unavailable_outbox_still_delivers_and_logs(
    tmp_path: Path,
    smtp_server: SmtpPeer,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = make_settings(**smtp_settings(smtp_server))
    unmigrated = make_engine(f"sqlite:///{tmp_path}/no-tables.db")
    notifier = make_notifier(config, engine=unmigrated)
    with caplog.at_level(logging.WARNING, logger="retraining_assets.core.notify"):
        delivery = notifier.notify(a_message())
    assert delivery == Delivery(delivery.key, None, "unrecorded", delivery.results)
    assert all(result.ok for result in delivery.results)
    assert len(smtp_server.messages) == 1
    assert "notification outbox unavailable" in caplog.text


# --- configuration -------------------------------------------------------------------------


def test_with_nothing_configured_the_log_alone_is_used(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    config = make_settings(notify_to=[])
    with caplog.at_level(logging.WARNING, logger="retraining_assets.core.notify"):
        delivery = make_notifier(config).notify(a_message())
    assert delivery.status == "sent" and [r.channel for r in delivery.results] == ["log"]
    assert "Drift detected: demo 2025-01" in caplog.text
    assert outbox_rows(config)[0].channels == ["log"]


def test_bad_configuration_names_the_channel_and_masks_secrets(
    make_settings: Callable[..., Settings],
) -> None:
    password, token = "Smtp-Pa55word!", "T0KEN-xyz-123"
    unknown_host = make_settings(
        smtp_host="smtp.invalid",
        smtp_password=password,
        smtp_username="u",
        slack_webhook_url="not a url",
    )
    wrong_port = make_settings(
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
        smtp_security="none",
        teams_webhook_url=f"http://user:{token}@127.0.0.1:{free_port()}/h/{token}",
    )

    results = {r.channel: r for r in notify_test(unknown_host, timeout=5.0)}
    results |= {f"{r.channel}2": r for r in notify_test(wrong_port, timeout=5.0)}

    assert results["log"].ok and results["log2"].ok
    assert results["smtp"].error.startswith("smtp: smtp.invalid:587 (starttls):")
    assert results["slack"].error == "slack: invalid webhook URL *** (need http(s)://)"
    assert results["smtp2"].error.startswith("smtp: 127.0.0.1:")
    assert "refused" in results["smtp2"].error.lower()
    assert results["teams2"].error.startswith("teams: http://127.0.0.1:")
    everything = repr(results)
    assert password not in everything and token not in everything
    assert not any(results[name].ok for name in ("smtp", "slack", "smtp2", "teams2"))


def test_notify_test_reports_every_channel(
    smtp_server: SmtpPeer, webhook_server: WebhookPeer, make_settings: Callable[..., Settings]
) -> None:
    config = make_settings(**smtp_settings(smtp_server), slack_webhook_url=webhook_server.url("/s"))
    results = notify_test(config)
    assert results == [
        ChannelResult("log", True),
        ChannelResult("smtp", True),
        ChannelResult("slack", True),
    ]
    assert smtp_server.messages[0].email["Subject"].startswith("Test:")
    assert outbox_rows(config) == []  # a test message is not queued for retries


def test_notify_test_flags_smtp_without_recipients(make_settings: Callable[..., Settings]) -> None:
    results = notify_test(make_settings(smtp_host="127.0.0.1", notify_to=[]))
    assert results[-1] == ChannelResult(
        "smtp", False, "smtp_host is set but notify_to (RETRAIN_NOTIFY_TO) is empty"
    )


# --- no sensitive data ever leaves ---------------------------------------------------------


def test_no_secret_or_record_value_reaches_any_peer_or_the_outbox(
    smtp_server: SmtpPeer, webhook_server: WebhookPeer, make_settings: Callable[..., Settings]
) -> None:
    db_password, smtp_password = "Db-Secret-77", "Smtp-Secret-88"
    config = make_settings(
        **smtp_settings(smtp_server),
        smtp_password=smtp_password,
        source_url=f"postgresql://reader:{db_password}@db/records",
        time_column="event_time",
        target="defaulted",
        slack_webhook_url=webhook_server.url("/hook"),
    )
    record = {"customer_id": "CUST-991-XY", "income": 73456.25, "ssn": "987-65-4321"}
    messages = [
        templates.run_failed(
            job_name="retrain_job",
            run_id="run-1",
            ui_base_url="http://ui",
            step_keys=["train"],
            error=f"ValueError: cannot score row {record} using "
            f"postgresql://reader:{db_password}@db password={smtp_password}",
        ),
        templates.drift_detected(pipeline="demo", partition="2025-02", features=record),
        templates.retraining_started(
            pipeline="demo",
            models=["xgboost"],
            reasons=[f"token={db_password} volume 73456.25 rows"],
        ),
        Message(
            "custom",
            "Custom",
            f"leaked {smtp_password} and {db_password}",
            f"<p>{smtp_password}</p>",
            "custom:1",
        ),
    ]
    notifier = make_notifier(config)
    for message in messages:
        notifier.notify(message)

    # Decoded parts: a quoted-printable or base64 body would hide a leak from a raw search.
    mails = [m.email for m in smtp_server.messages]
    seen = [
        m["Subject"] + m.get_body(("plain",)).get_content() + m.get_body(("html",)).get_content()
        for m in mails
    ]
    seen += [repr(post.body) for post in webhook_server.posts]
    seen += [repr(tuple(row)) for row in outbox_rows(config)]
    assert len(mails) == len(webhook_server.posts) == 4
    for leaked in (db_password, smtp_password, "CUST-991-XY", "73456.25", "987-65-4321"):
        assert not any(leaked in text for text in seen), leaked
    assert "customer_id, income, ssn" in seen[1]  # the names of the features, not values


# --- PostgreSQL: the same guarantees under real row locks ----------------------------------


def test_on_postgresql_concurrent_drains_and_duplicate_events_deliver_once(
    postgres_database: str, smtp_server: SmtpPeer, make_settings: Callable[..., Settings]
) -> None:
    config = make_settings(**smtp_settings(smtp_server), database_url=postgres_database)
    notifier = make_notifier(config)
    for month in range(1, 13):
        notifier.enqueue(a_message(key=f"drift:demo:2025-{month:02d}"))
    assert notifier.notify(a_message(key="drift:demo:2025-01")).status == "duplicate"
    barrier = threading.Barrier(3)
    results: list[DrainResult] = []

    def drain() -> None:
        worker = make_notifier(config)
        barrier.wait()
        results.append(worker.drain())

    threads = [threading.Thread(target=drain) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(result.sent for result in results) == 12
    assert len(smtp_server.messages) == 12
    rows = outbox_rows(config)
    assert {row.status for row in rows} == {"sent"} and {row.attempts for row in rows} == {1}


def test_an_approval_request_names_the_pending_candidates_it_supersedes() -> None:
    arguments = dict(
        pipeline="demo",
        candidate="v9",
        champion="v6",
        metric="accuracy",
        how=how_to_decide("demo", 9),
    )
    message = templates.approval_required(
        **arguments, lift=0.02, min_lift=0.05, supersedes=["v7", "v8"]
    )
    assert "Supersedes: v7, v8 (no longer pending; still registered)" in " ".join(
        message.text.split()
    )
    alone = templates.approval_required(**arguments, lift=0.02, min_lift=0.05)
    assert "Supersedes" not in alone.text


def test_an_approval_request_says_how_to_approve_or_reject_in_the_cli_and_in_dagster() -> None:
    message = templates.approval_required(
        pipeline="demo", candidate="v9", champion="v6", metric="accuracy", lift=0.02,
        min_lift=0.05, how=how_to_decide("demo", 9),
    )  # fmt: skip
    text = " ".join(message.text.split())
    # the exact line the CLI accepts (a version number, not "v9"), and the job to launch
    assert "retrain approve 9 --pipeline demo --by USER --reason TEXT" in text
    assert "retrain reject 9 --pipeline demo --by USER --reason TEXT" in text
    assert "demo_approve_job with config ops.demo_approve.config: {version: 9" in text
    assert "demo_reject_job" in text
