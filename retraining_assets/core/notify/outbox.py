"""Notifications that are never lost: SMTP, Slack/Teams webhooks and the log, via an outbox.

``Notifier.notify(message)`` first writes the message to the ``notification_outbox`` table (one
transaction, deduplicated by its idempotency key), then delivers it at once, so code without a
daemon (the CLI) delivers too. A delivery failure never raises: it is logged, recorded on the row
with secrets masked, and ``Notifier.drain()`` retries later, re-sending only to the channels
that failed. Before sending, a worker claims the row with a compare-and-set UPDATE, so two
drains (or a drain racing ``notify``) never deliver the same message twice.
"""

from __future__ import annotations

import logging
import ssl
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa

from retraining_assets.core.database import platform_engine
from retraining_assets.core.notify.channels import (
    LOG_CHANNEL,
    Channel,
    ChannelError,
    ChannelResult,
    LogChannel,
    channels_from_settings,
    describe_error,
    settings_secrets,
    smtp_problem,
)
from retraining_assets.core.notify.templates import (
    Message,
    test_message,
)
from retraining_assets.core.schema import notification_outbox as outbox
from retraining_assets.core.timestamps import utc_now
from retraining_assets.settings import Settings

log = logging.getLogger(__name__)

Status = Literal["pending", "sending", "sent", "failed"]


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
            reason = self.mask(f"{name}: {describe_error(error)}")
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
    if problem := smtp_problem(settings):
        results.append(ChannelResult("smtp", False, problem))
    return results
