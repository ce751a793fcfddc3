"""Notifications that are never lost: SMTP, Slack/Teams webhooks and the log, via an outbox.

``Notifier.notify(message)`` first writes the message to the ``notification_outbox`` table (one
transaction, deduplicated by its idempotency key), then delivers it at once, so code without a
daemon (the CLI) delivers too. A delivery failure never raises: it is logged, recorded on the row
with secrets masked, and ``Notifier.drain()`` retries later, re-sending only to the channels
that failed. Before sending, a worker claims the row with a compare-and-set UPDATE, so two
drains (or a drain racing ``notify``) never deliver the same message twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import smtplib
import ssl
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from hashlib import sha256
from typing import Literal, Protocol
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from retraining_assets.core.database import platform_engine
from retraining_assets.core.notify_templates import (
    EventType,
    Message,
    approval_required,
    clean,
    drift_detected,
    error_summary,
    promoted,
    promotion_pending,
    retraining_completed,
    retraining_started,
    rolled_back,
    rollout_change,
    run_failed,
    run_url,
    test_message,
)
from retraining_assets.core.schema import notification_outbox as outbox
from retraining_assets.settings import Settings

__all__ = [
    "ChannelError",
    "ChannelResult",
    "Delivery",
    "Dispatcher",
    "DrainResult",
    "EventType",
    "LogChannel",
    "Message",
    "Notifier",
    "SmtpChannel",
    "WebhookChannel",
    "approval_required",
    "channels_from_settings",
    "clean",
    "drift_detected",
    "error_summary",
    "mask_webhook_url",
    "notify_test",
    "promoted",
    "promotion_pending",
    "retraining_completed",
    "retraining_started",
    "rolled_back",
    "rollout_change",
    "run_failed",
    "run_url",
    "slack_webhook",
    "teams_webhook",
]

log = logging.getLogger(__name__)

Status = Literal["pending", "sending", "sent", "failed"]
LOG_CHANNEL = "log"
MIN_TOKEN_LENGTH = 16


def utc_now() -> datetime:
    """Naive UTC: the outbox stores naive timestamps so SQLite and PostgreSQL compare alike."""
    return datetime.now(UTC).replace(tzinfo=None)


class ChannelError(RuntimeError):
    """A channel could not deliver. The message names the channel and never holds a secret."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel


@dataclass(frozen=True)
class ChannelResult:
    """The outcome of one delivery attempt on one channel."""

    channel: str
    ok: bool
    error: str | None = None


class Channel(Protocol):
    """Something a message can be sent through. ``send`` raises ``ChannelError``."""

    name: str

    def send(self, message: Message, recipients: Sequence[str]) -> None: ...

    def secrets(self) -> tuple[str, ...]: ...


# --- channels ------------------------------------------------------------------------------


@dataclass
class LogChannel:
    """Python logging: always configured, so a message is never only in the database."""

    name: str = LOG_CHANNEL
    level: int = logging.WARNING

    def send(self, message: Message, recipients: Sequence[str]) -> None:
        log.log(self.level, "%s\n%s", message.subject, message.text)

    def secrets(self) -> tuple[str, ...]:
        return ()


def build_email(message: Message, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """A multipart/alternative e-mail: plain text first, HTML as the preferred alternative."""
    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = sender
    email["To"] = ", ".join(recipients)
    email["Date"] = formatdate(localtime=False)
    # Stable across retries, so a receiving server can drop a duplicate of a resent message.
    domain = sender.rpartition("@")[2] or "retraining-assets.local"
    email["Message-ID"] = f"<{sha256(message.key.encode()).hexdigest()[:32]}@{domain}>"
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: autoresponders must not answer
    email["X-Retraining-Event"] = message.event_type
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    return email


@dataclass
class SmtpChannel:
    """E-mail over SMTP with STARTTLS (``starttls``), implicit TLS (``ssl``) or none."""

    host: str
    port: int
    sender: str
    security: Literal["none", "starttls", "ssl"] = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    name: str = "smtp"

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port} ({self.security})"

    def secrets(self) -> tuple[str, ...]:
        return (self.password,) if self.password else ()

    def send(self, message: Message, recipients: Sequence[str]) -> None:
        if not recipients:
            raise ChannelError(self.name, "no recipients (set notify_to / RETRAIN_NOTIFY_TO)")
        email = build_email(message, self.sender, recipients)
        try:
            with self._connect() as smtp:
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(email, self.sender, list(recipients))
        except smtplib.SMTPAuthenticationError as error:
            raise ChannelError(
                self.name,
                f"{self.target}: login as {self.username!r} refused "
                f"({error.smtp_code} {_decode(error.smtp_error)})",
            ) from None
        except smtplib.SMTPResponseException as error:
            raise ChannelError(
                self.name,
                f"{self.target}: server answered {error.smtp_code} {_decode(error.smtp_error)}",
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            raise ChannelError(self.name, f"{self.target}: {_describe(error)}") from None
        if refused:  # some (not all) recipients were refused: delivered, but say so
            log.warning("smtp %s refused recipients %s", self.target, sorted(refused))

    def _connect(self) -> smtplib.SMTP:
        context = self.ssl_context or ssl.create_default_context()
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.security == "starttls":
                smtp.starttls(context=context)
        except BaseException:
            smtp.close()
            raise
        return smtp


def slack_payload(message: Message) -> dict[str, object]:
    """Slack incoming-webhook JSON; Slack wants ``&``, ``<`` and ``>`` escaped in text."""

    def escape(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    return {"text": f"*{escape(message.subject)}*\n{escape(message.text)}"}


def teams_payload(message: Message) -> dict[str, object]:
    """An Adaptive Card, the format of Teams Workflows webhooks (O365 connectors are retired)."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": message.subject, "weight": "Bolder", "wrap": True},
            {"type": "TextBlock", "text": message.text, "wrap": True, "fontType": "Monospace"},
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def mask_webhook_url(url: str) -> str:
    """Scheme and host only: a webhook's path and query are its secret."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "***"
    if not parts.scheme or not parts.hostname:
        return "***"
    hidden = "/***" if (parts.path not in ("", "/") or parts.query) else ""
    return f"{parts.scheme}://{parts.hostname}{port}{hidden}"


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


@dataclass
class WebhookChannel:
    """An HTTP POST of JSON, retried with bounded exponential backoff on 429 and 5xx."""

    name: str
    url: str = field(repr=False)
    payload: Callable[[Message], Mapping[str, object]]
    timeout: float = 10.0
    attempts: int = 3
    backoff: float = 1.0
    max_backoff: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)

    @property
    def target(self) -> str:
        return mask_webhook_url(self.url)

    def secrets(self) -> tuple[str, ...]:
        parts = urlsplit(self.url)
        # The whole URL, its password, and a token-like path or query should one appear alone.
        tokens = [part for part in (parts.path, parts.query) if len(part) >= MIN_TOKEN_LENGTH]
        return tuple(s for s in (self.url, parts.password, *tokens) if s)

    def send(self, message: Message, recipients: Sequence[str]) -> None:
        scheme = urlsplit(self.url).scheme
        if scheme not in ("http", "https") or self.target == "***":
            raise ChannelError(self.name, f"invalid webhook URL {self.target} (need http(s)://)")
        body = json.dumps(self.payload(message)).encode()
        last = ""
        for attempt in range(1, self.attempts + 1):
            status, retry_after, last = self._post(body)
            if 200 <= status < 300:
                return
            if status and not _retryable(status):
                break
            if attempt < self.attempts:
                self.sleep(self._delay(attempt, retry_after))
        raise ChannelError(self.name, f"{self.target}: {last} (after {attempt} attempt(s))")

    def _post(self, body: bytes) -> tuple[int, str | None, str]:
        """(HTTP status or 0 for a retryable network error, Retry-After, description)."""
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "retraining-assets"},
        )
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self.ssl_context
            ) as response:
                return response.status, None, f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Retry-After"), f"HTTP {error.code} {error.reason}"
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, TimeoutError | ConnectionResetError):
                return 0, None, _describe(reason)
            raise ChannelError(self.name, f"{self.target}: {_describe(reason)}") from None
        except (TimeoutError, ConnectionResetError) as error:
            return 0, None, _describe(error)
        except (OSError, ValueError) as error:
            raise ChannelError(self.name, f"{self.target}: {_describe(error)}") from None

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self.backoff * 2 ** (attempt - 1)
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, float(retry_after))
        return min(delay, self.max_backoff)


def slack_webhook(url: str, **options: object) -> WebhookChannel:
    return WebhookChannel("slack", url, slack_payload, **options)


def teams_webhook(url: str, **options: object) -> WebhookChannel:
    return WebhookChannel("teams", url, teams_payload, **options)


def _decode(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _describe(error: BaseException | object) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, TimeoutError | ConnectionError) or "Errno" in text:
        return text
    return f"{type(error).__name__}: {text}"


# --- settings ------------------------------------------------------------------------------


def _smtp_problem(settings: Settings) -> str | None:
    if settings.smtp_host and not settings.notify_to:
        return "smtp_host is set but notify_to (RETRAIN_NOTIFY_TO) is empty"
    return None


def channels_from_settings(
    settings: Settings,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Channel]:
    """The configured channels besides the log (which the ``Notifier`` always adds)."""
    channels: list[Channel] = []
    if settings.smtp_host:
        if problem := _smtp_problem(settings):
            log.warning("e-mail disabled: %s", problem)
        else:
            channels.append(
                SmtpChannel(
                    host=settings.smtp_host,
                    port=settings.smtp_port,
                    sender=settings.notify_from,
                    security=settings.smtp_security,
                    username=settings.smtp_username,
                    password=settings.smtp_password,
                    timeout=timeout,
                    ssl_context=ssl_context,
                )
            )
    webhook_options = {"timeout": timeout, "sleep": sleep, "ssl_context": ssl_context}
    if settings.slack_webhook_url:
        channels.append(slack_webhook(settings.slack_webhook_url, **webhook_options))
    if settings.teams_webhook_url:
        channels.append(teams_webhook(settings.teams_webhook_url, **webhook_options))
    return channels


def settings_secrets(settings: Settings) -> tuple[str, ...]:
    """Values that must never reach a message, a log line or the outbox."""
    secrets = [settings.smtp_password or "", settings.artifact_key or ""]
    for url in (settings.database_url, settings.source_url):
        if url:
            # An unparseable URL is the database layer's error to report, not ours.
            with contextlib.suppress(Exception):
                secrets.append(make_url(url).password or "")
    return tuple(s for s in secrets if s)


# --- the notifier and its outbox -----------------------------------------------------------


class Dispatcher:
    """Channels by name, with the secrets to mask in anything they report."""

    def __init__(self, channels: Iterable[Channel], secrets: Sequence[str] = ()) -> None:
        self.channels: dict[str, Channel] = {LOG_CHANNEL: LogChannel()}
        self.channels.update({channel.name: channel for channel in channels})
        own = (secret for channel in self.channels.values() for secret in channel.secrets())
        # Longest first, so a URL is masked whole before its path would be.
        self.secrets = sorted({s for s in (*secrets, *own) if len(s) >= 4}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def send(self, name: str, message: Message, recipients: Sequence[str]) -> ChannelResult:
        """Deliver through one channel; any failure becomes a masked ``ChannelResult``."""
        channel = self.channels.get(name)
        try:
            if channel is None:
                raise ChannelError(name, "channel is no longer configured")
            channel.send(message, recipients)
        except ChannelError as error:
            reason = self.mask(str(error))
            log.warning("notification %r not delivered: %s", message.subject, reason)
            return ChannelResult(name, False, reason)
        except Exception as error:  # a channel bug must not stop the other channels
            reason = self.mask(f"{name}: {_describe(error)}")
            log.warning("notification %r: channel %s crashed: %s", message.subject, name, reason)
            return ChannelResult(name, False, reason)
        return ChannelResult(name, True)

    def send_all(self, message: Message, recipients: Sequence[str]) -> list[ChannelResult]:
        return [self.send(name, message, recipients) for name in self.channels]


DeliveryStatus = Literal["sent", "pending", "failed", "duplicate", "busy", "unrecorded"]


@dataclass(frozen=True)
class Delivery:
    """What ``notify`` did: ``status`` is sent, pending (will retry), failed, duplicate (the
    key was already notified), busy (another worker holds it) or unrecorded (outbox down)."""

    key: str
    outbox_id: int | None
    status: DeliveryStatus
    results: tuple[ChannelResult, ...] = ()


@dataclass(frozen=True)
class DrainResult:
    """Counts of one drain: rows delivered, rescheduled, given up, and claimed by others."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0


class Notifier:
    """Writes every message to the outbox, then delivers it through every channel."""

    def __init__(
        self,
        engine: sa.Engine,
        channels: Iterable[Channel] = (),
        *,
        recipients: Sequence[str] = (),
        subject_prefix: str = "",
        secrets: Sequence[str] = (),
        max_attempts: int = 10,
        retry_delay: float = 60.0,
        max_retry_delay: float = 3600.0,
        lease_seconds: float = 600.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.engine = engine
        self.dispatcher = Dispatcher(channels, secrets)
        self.recipients = list(recipients)
        self.subject_prefix = subject_prefix
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        # The lease outlives any delivery (timeouts x retries), so it only expires on a crash.
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        engine: sa.Engine | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        **options: object,
    ) -> Notifier:
        """The channels configured in ``settings`` (the log alone when none is), with the
        outbox in the platform database."""
        return cls(
            engine or platform_engine(settings.platform_database_url),
            channels_from_settings(settings, ssl_context=ssl_context, timeout=timeout, sleep=sleep),
            recipients=settings.notify_to,
            secrets=settings_secrets(settings),
            **options,
        )

    # --- public API ------------------------------------------------------------------------

    def notify(self, message: Message) -> Delivery:
        """Record ``message`` then deliver it now. Never raises on a delivery problem; the
        same key twice is a no-op."""
        try:
            row_id, created = self.enqueue(message)
        except sa.exc.SQLAlchemyError as error:
            # Without the outbox the message can't be retried: deliver it once, loudly.
            log.error(
                "notification outbox unavailable (%s); delivering %r without a record",
                self._db_error(error),
                message.subject,
            )
            results = self.dispatcher.send_all(self._scrubbed(message), self.recipients)
            return Delivery(message.key, None, "unrecorded", tuple(results))
        if not created:
            return Delivery(message.key, row_id, "duplicate")
        try:
            return self.deliver(row_id, seen_attempts=0, max_attempts=self.max_attempts)
        except sa.exc.SQLAlchemyError as error:  # recorded already: the drain will finish it
            log.error(
                "notification %s: outbox update failed (%s); the drain will retry",
                row_id,
                self._db_error(error),
            )
            return Delivery(message.key, row_id, "pending")

    def enqueue(self, message: Message) -> tuple[int, bool]:
        """Write ``message`` to the outbox; return its row id and whether it is new."""
        message = self._scrubbed(message)
        row = {
            "idempotency_key": message.key,
            "event_type": message.event_type,
            "subject": message.subject,
            "body_text": message.text,
            "body_html": message.html,
            "recipients": list(self.recipients),
            "channels": list(self.dispatcher.channels),
            "channel_status": {name: "pending" for name in self.dispatcher.channels},
            "status": "pending",
            "attempts": 0,
            "created_at": self.clock(),
        }
        try:
            with self.engine.begin() as connection:
                inserted = connection.execute(sa.insert(outbox).values(row))
            return inserted.inserted_primary_key[0], True
        except sa.exc.IntegrityError:  # the key exists: this event was already notified
            with self.engine.connect() as connection:
                existing = connection.scalar(
                    sa.select(outbox.c.id).where(outbox.c.idempotency_key == message.key)
                )
            if existing is None:
                raise
            return existing, False

    def drain(
        self, max_attempts: int | None = None, limit: int = 100, budget_seconds: float | None = None
    ) -> DrainResult:
        """Retry due rows that are not fully delivered, oldest first.

        Rows that reached ``max_attempts`` stay ``failed`` (a higher ``max_attempts`` revives
        them). ``budget_seconds`` stops claiming new rows once spent, for callers with a time
        limit such as a sensor.
        """
        max_attempts = max_attempts or self.max_attempts
        started = time.monotonic()
        now = self.clock()
        due = sa.or_(
            sa.and_(
                outbox.c.status.in_(("pending", "failed")),
                sa.or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now),
            ),
            sa.and_(outbox.c.status == "sending", outbox.c.lease_until < now),  # a crashed worker
        )
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(outbox.c.id, outbox.c.attempts)
                .where(due, outbox.c.attempts < max_attempts)
                .order_by(outbox.c.id)
                .limit(limit)
            ).all()
        counts = {"sent": 0, "pending": 0, "failed": 0, "busy": 0}
        for row in rows:
            if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                break
            delivery = self.deliver(row.id, row.attempts, max_attempts)
            counts[delivery.status] += 1
        return DrainResult(counts["sent"], counts["pending"], counts["failed"], counts["busy"])

    # --- delivery --------------------------------------------------------------------------

    def claim(self, row_id: int, seen_attempts: int) -> str | None:
        """Compare-and-set: the row becomes ours only if nobody claimed it since we looked."""
        token = uuid.uuid4().hex
        now = self.clock()
        with self.engine.begin() as connection:
            claimed = connection.execute(
                sa.update(outbox)
                .where(
                    outbox.c.id == row_id,
                    outbox.c.attempts == seen_attempts,
                    sa.or_(
                        outbox.c.status.in_(("pending", "failed")),
                        sa.and_(outbox.c.status == "sending", outbox.c.lease_until < now),
                    ),
                )
                .values(
                    status="sending",
                    attempts=seen_attempts + 1,
                    claim_token=token,
                    lease_until=now + self.lease,
                )
            ).rowcount
        return token if claimed == 1 else None

    def deliver(self, row_id: int, seen_attempts: int, max_attempts: int | None = None) -> Delivery:
        """Claim the row (as last seen with ``seen_attempts``) and send it to every channel
        not yet delivered. ``busy`` when another worker claimed it first."""
        max_attempts = max_attempts or self.max_attempts
        token = self.claim(row_id, seen_attempts)
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(outbox).where(outbox.c.id == row_id)).one()
        if token is None:
            return Delivery(row.idempotency_key, row_id, "busy")
        message = Message(
            row.event_type, row.subject, row.body_text, row.body_html, row.idempotency_key
        )
        state = dict(row.channel_status)
        results: list[ChannelResult] = []
        for name in row.channels:
            if state.get(name) == "sent":
                continue  # delivered by an earlier attempt: never twice
            result = self.dispatcher.send(name, message, row.recipients)
            results.append(result)
            state[name] = "sent" if result.ok else "failed"
            # Persist each channel at once so a crash mid-delivery cannot cause a resend.
            self._update(row_id, token, channel_status=dict(state))
        return self._finish(row, token, state, results, max_attempts)

    def _finish(
        self,
        row,
        token: str,
        state: dict[str, str],
        results: list[ChannelResult],
        max_attempts: int,
    ) -> Delivery:
        now = self.clock()
        attempts = row.attempts
        errors = "; ".join(r.error for r in results if r.error)
        if all(state.get(name) == "sent" for name in row.channels):
            status: Status = "sent"
            values = {"sent_at": now, "next_attempt_at": None}
        elif attempts >= max_attempts:
            status = "failed"
            values = {"next_attempt_at": None}
            log.error(
                "notification %s %r: giving up after %d attempts: %s",
                row.id,
                row.subject,
                attempts,
                errors,
            )
        else:
            status = "pending"
            delay = min(self.retry_delay * 2 ** (attempts - 1), self.max_retry_delay)
            values = {"next_attempt_at": now + timedelta(seconds=delay)}
        if errors:
            values["last_error"] = errors
        self._update(row.id, token, status=status, claim_token=None, lease_until=None, **values)
        return Delivery(row.idempotency_key, row.id, status, tuple(results))

    def _update(self, row_id: int, token: str, **values: object) -> None:
        # Guarded by the claim token: a worker whose lease was taken over writes nothing.
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(outbox)
                .where(outbox.c.id == row_id, outbox.c.claim_token == token)
                .values(**values)
            )

    # --- secrets ---------------------------------------------------------------------------

    def _db_error(self, error: sa.exc.SQLAlchemyError) -> str:
        # The driver error's first line: SQLAlchemy's own text would repeat the bound values.
        text = str(getattr(error, "orig", None) or error).splitlines()[0]
        return self.dispatcher.mask(text)

    def _scrubbed(self, message: Message) -> Message:
        """The message with any configured secret masked and the subject prefix applied."""
        prefix = f"{self.subject_prefix} " if self.subject_prefix else ""
        return Message(
            message.event_type,
            self.dispatcher.mask(prefix + message.subject),
            self.dispatcher.mask(message.text),
            self.dispatcher.mask(message.html),
            message.key,
        )


def notify_test(
    settings: Settings,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[ChannelResult]:
    """Send a test message through the log and every configured channel (no outbox, no
    retry later) and report which worked, for ``retrain notify-test``."""
    channels = channels_from_settings(
        settings, ssl_context=ssl_context, timeout=timeout, sleep=sleep
    )
    dispatcher = Dispatcher(channels, settings_secrets(settings))
    results = dispatcher.send_all(test_message(nonce=uuid.uuid4().hex[:12]), settings.notify_to)
    if problem := _smtp_problem(settings):
        results.append(ChannelResult("smtp", False, problem))
    return results
