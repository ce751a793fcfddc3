"""Bearer-token authentication of the prediction service (``RETRAIN_SERVE_TOKEN``).

A pure ASGI middleware, so it guards every route, the docs and their assets included, and
costs a header scan per request. ``/health`` stays open: load balancers probe it, and it
shows no file paths and no data. Tokens are compared as SHA-256 digests with
``hmac.compare_digest``, so the time taken says nothing about the token (not even its
length). A refused request gets a 401 with ``WWW-Authenticate: Bearer`` (RFC 6750).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import Any

from fastapi import FastAPI
from pydantic_core import to_json

OPEN_PATHS = frozenset({"/health"})
REALM = "retraining_assets"
SCHEME = "bearerAuth"


class BearerTokenMiddleware:
    """Refuses every HTTP request but ``OPEN_PATHS`` without ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self._digest = _digest(token.encode())

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        problem = self._problem(given)
        if problem is None:
            await self.app(scope, receive, send)
            return
        challenge = f'Bearer realm="{REALM}"'
        if given is not None:
            challenge += ', error="invalid_token"'
        body = to_json({"detail": problem})
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", challenge.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _problem(self, header: bytes | None) -> str | None:
        if header is None:
            return "authentication required: send 'Authorization: Bearer <RETRAIN_SERVE_TOKEN>'"
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(
            _digest(token.strip()), self._digest
        ):
            return "invalid bearer token"
        return None


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def require_token(app: FastAPI, token: str) -> None:
    """Guard ``app`` with ``token`` and say so in its OpenAPI document: a bearer security
    scheme on every operation but ``/health``, each with its 401 response."""
    app.add_middleware(BearerTokenMiddleware, token=token)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "RETRAIN_SERVE_TOKEN",
        }
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                if path in OPEN_PATHS:
                    operation["security"] = []
                    continue
                operation["security"] = [{SCHEME: []}]
                operation.setdefault("responses", {})["401"] = {
                    "description": "Missing or invalid bearer token (RETRAIN_SERVE_TOKEN)"
                }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable only from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to any address
