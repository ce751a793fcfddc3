"""Time as the platform stores and prints it: naive UTC in the database, ISO 8601 UTC with a
``Z`` in every JSON the project emits."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utc_now"]


def utc_now() -> datetime:
    """The current time as naive UTC, the form every platform table stores."""
    return datetime.now(UTC).replace(tzinfo=None)
