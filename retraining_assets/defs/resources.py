"""Dagster resources: thin configurable wrappers over the core classes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from retraining_assets.core.database import platform_engine
from retraining_assets.core.reference import ReferenceStore
from retraining_assets.core.registry import Registry
from retraining_assets.core.sources import (
    FileRecordSource,
    RecordSource,
    SqlRecordSource,
    open_source,
)
from retraining_assets.settings import Settings

PLATFORM = "platform"
CLOCK = "clock"


class RecordSourceResource(dg.ConfigurableResource):
    """A pipeline's labelled records: a SQL table (``url`` + ``table``) or files (``path``)."""

    time_column: str
    url: str | None = None
    table: str | None = None
    path: str | None = None

    @classmethod
    def of(cls, source: RecordSource) -> RecordSourceResource:
        if isinstance(source, SqlRecordSource):
            return cls(time_column=source.time_column, url=source.url, table=source.table)
        if isinstance(source, FileRecordSource):
            return cls(time_column=source.time_column, path=source.path)
        raise TypeError(f"no resource for {type(source).__name__}")

    def source(self) -> RecordSource:
        return open_source(self.time_column, url=self.url, table=self.table, path=self.path)


class PlatformResource(dg.ConfigurableResource):
    """The platform state: its database (registry, audit, outbox, demo records; migrated on
    first use) and the artifact folder (models, references)."""

    database_url: str
    artifact_root: str

    @classmethod
    def from_settings(cls, settings: Settings) -> PlatformResource:
        return cls(
            database_url=settings.platform_database_url,
            artifact_root=str(settings.artifact_path),
        )

    def engine(self) -> sa.Engine:
        return platform_engine(self.database_url)

    def registry(self) -> Registry:
        return Registry(self.engine(), Path(self.artifact_root))

    def references(self) -> ReferenceStore:
        return ReferenceStore(Path(self.artifact_root))


class ClockResource(dg.ConfigurableResource):
    """What "now" is for the sensors: the wall clock (naive UTC), or a fixed ``moment`` when a
    simulation replays history (the demo), so that the newest complete period and the retrain
    cooldown are those of the simulated moment."""

    moment: str | None = None  # ISO 8601, naive UTC

    def now(self) -> datetime:
        if self.moment is not None:
            return datetime.fromisoformat(self.moment)
        return datetime.now(UTC).replace(tzinfo=None)
