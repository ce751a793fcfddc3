"""The model registry: numbered versions, artifacts with checksums, aliases with their full
history, an append-only audit log, pending approvals and the training watermark.

Everything lives in the platform database (SQLAlchemy Core, SQLite or PostgreSQL) and the
artifact folder. Unlike MLflow, an alias move is never lost: ``alias_history`` keeps every move,
and each move is one transaction with a compare-and-set on the version the caller expected the
alias to hold, so two racing runs can never both become champion.

Concurrency, per backend:

- SQLite: every write transaction starts with ``BEGIN IMMEDIATE``, which takes the database's
  write lock up front (waiting up to the busy timeout), so read-check-write sequences are
  serialised; the conditional UPDATE below is a second guard.
- PostgreSQL (READ COMMITTED): an alias moves by ``UPDATE ... WHERE version = :expected``; a
  concurrent mover blocks on the row lock, re-evaluates the condition after the winner commits
  and updates nothing. A first move INSERTs and loses on the primary key. Version numbers are
  assigned under a per-pipeline transaction advisory lock, so nobody else writes the same
  ``v<version>`` folder until the row is committed or rolled back.

Timestamps are stored as naive UTC; aware datetimes are converted, naive ones taken as UTC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from retraining_assets.core.database import platform_engine
from retraining_assets.core.registry.approvals import Approvals
from retraining_assets.core.registry.judgements import Judgements
from retraining_assets.core.registry.watermark import Watermarks

if TYPE_CHECKING:
    from retraining_assets.settings import Settings

__all__ = ["Registry"]


class Registry(Approvals, Watermarks, Judgements):
    """Model versions, aliases, audit log, approvals, watermarks and judgements of every
    pipeline.

    Methods that change state accept an optional ``connection``: pass the one yielded by
    :meth:`transaction` to make several changes (e.g. resolve an approval and move the
    champion) one atomic transaction. Without it each method commits on its own.
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        """The platform database (migrated), the configured artifact folder and signing key."""
        return cls(
            platform_engine(settings.platform_database_url),
            settings.artifact_path,
            settings.artifact_key_path,
            key=settings.artifact_key.get_secret_value() if settings.artifact_key else None,
            legacy_pickles=settings.legacy_pickles,
        )
