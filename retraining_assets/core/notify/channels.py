"""Notification channels: Python logging (always), SMTP e-mail, Slack and Teams webhooks, and
the ones the settings configure. A channel raises ``ChannelError`` naming itself, never a
secret."""

from __future__ import annotations

import contextlib
import json
import logging
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from hashlib import sha256
from typing import Literal, Protocol
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from retraining_assets.core.notify.templates import (
    Message,
)
from retraining_assets.settings import Settings

log = logging.getLogger(__name__)

LOG_CHANNEL = "log"
MIN_TOKEN_LENGTH = 16


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
            raise ChannelError(self.name, f"{self.target}: {describe_error(error)}") from None
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
                return 0, None, describe_error(reason)
            raise ChannelError(self.name, f"{self.target}: {describe_error(reason)}") from None
        except (TimeoutError, ConnectionResetError) as error:
            return 0, None, describe_error(error)
        except (OSError, ValueError) as error:
            raise ChannelError(self.name, f"{self.target}: {describe_error(error)}") from None

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


def describe_error(error: BaseException | object) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, TimeoutError | ConnectionError) or "Errno" in text:
        return text
    return f"{type(error).__name__}: {text}"


# --- settings ------------------------------------------------------------------------------


def smtp_problem(settings: Settings) -> str | None:
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
        if problem := smtp_problem(settings):
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
    secrets = [settings.smtp_password or ""]
    if settings.artifact_key is not None:
        secrets.append(settings.artifact_key.get_secret_value())
    for url in (settings.database_url, settings.source_url):
        if url:
            # An unparseable URL is the database layer's error to report, not ours.
            with contextlib.suppress(Exception):
                secrets.append(make_url(url).password or "")
    return tuple(s for s in secrets if s)
