"""Real peers for the notification tests: an SMTP server (aiosmtpd) with optional STARTTLS,
implicit TLS and login, and an HTTP server that records webhook posts. No mocks.

The fixtures that start them (``certificate``, ``smtp_server``, ``webhook_server``) live in the
root ``conftest.py``: the notify, CLI and Dagster tests all use them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SMTP_USER = "mailer"
SMTP_PASSWORD = "pw-Sup3rSecret!"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for localhost / 127.0.0.1 and the contexts that use it."""

    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert_file))


def make_certificate(directory: Path) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def email(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        with self._lock:
            self.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content or envelope.content,
                )
            )
        return "250 Message accepted for delivery"


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == SMTP_USER
        and auth_data.password.decode() == SMTP_PASSWORD
    )
    # handled=False: aiosmtpd answers 535 itself (handled=True would leave the client waiting).
    return AuthResult(success=ok, handled=False)


Security = Literal["none", "starttls", "ssl"]


@dataclass
class SmtpPeer:
    """An aiosmtpd server on loopback; ``stop``/``start`` keep the port and the inbox."""

    security: Security = "none"
    certificate: Certificate | None = None
    require_login: bool = False
    port: int = field(default_factory=free_port)
    inbox: _Inbox = field(default_factory=_Inbox)
    _controller: Controller | None = None

    @property
    def messages(self) -> list[Received]:
        return self.inbox.messages

    def start(self) -> SmtpPeer:
        options: dict[str, object] = {}
        if self.security != "none":
            assert self.certificate, "TLS needs a certificate"
            context = self.certificate.server_context()
            options["ssl_context" if self.security == "ssl" else "tls_context"] = context
        if self.require_login:
            # Keep aiosmtpd's "no AUTH before STARTTLS" protection on. With implicit TLS the
            # whole connection is encrypted, but aiosmtpd only recognises STARTTLS as TLS.
            options.update(
                authenticator=_authenticator,
                auth_required=True,
                auth_require_tls=self.security != "ssl",
            )
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()  # returns once the server answers
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@dataclass
class Post:
    path: str
    body: dict


class WebhookPeer:
    """A ThreadingHTTPServer that records JSON posts and answers from a script of statuses
    (the last status repeats)."""

    def __init__(self, statuses: Sequence[int] = (200,)) -> None:
        self.posts: list[Post] = []
        self.statuses = list(statuses)
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                peer.posts.append(Post(self.path, json.loads(self.rfile.read(length))))
                status = peer.statuses.pop(0) if len(peer.statuses) > 1 else peer.statuses[0]
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def __enter__(self) -> WebhookPeer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
