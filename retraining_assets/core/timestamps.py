"""Time as the platform stores and prints it: naive UTC in the database, ISO 8601 UTC with a
``Z`` in every JSON the project emits."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso_utc", "utc_now"]


def utc_now() -> datetime:
    """The current time as naive UTC, the form every platform table stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso_utc(value: datetime | None) -> str | None:
    """``value`` as ISO 8601 UTC with a ``Z`` (``2024-03-01T12:00:00Z``), the one form of a
    time in the project's JSON; a naive value is taken as UTC, None stays None."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"
