"""Dagster resources: thin configurable wrappers over the core classes."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa

from retraining_assets.core.database import platform_engine
from retraining_assets.core.sources import (
    FileRecordSource,
    RecordSource,
    SqlRecordSource,
    open_source,
)


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


class PlatformDatabase(dg.ConfigurableResource):
    """The platform database (registry, audit, outbox, demo records), migrated on first use."""

    url: str

    def engine(self) -> sa.Engine:
        return platform_engine(self.url)
