"""Dagster resources: thin configurable wrappers over the core classes."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from pydantic import SecretStr

from retraining_assets.core.database import platform_engine
from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.reference import ReferenceStore
from retraining_assets.core.registry import Registry
from retraining_assets.core.sources import (
    FileRecordSource,
    RecordSource,
    SqlRecordSource,
    open_source,
)
from retraining_assets.core.timestamps import utc_now
from retraining_assets.settings import Settings

PLATFORM = "platform"
CLOCK = "clock"
RECORDS = "records"


class RecordSourceConfig(dg.Config):
    """One pipeline's labelled records: a SQL table (``url`` + ``table``) or files (``path``)."""

    time_column: str
    url: str | None = None
    table: str | None = None
    path: str | None = None

    @classmethod
    def of(cls, source: RecordSource) -> RecordSourceConfig:
        if isinstance(source, SqlRecordSource):
            return cls(time_column=source.time_column, url=source.url, table=source.table)
        if isinstance(source, FileRecordSource):
            return cls(time_column=source.time_column, path=source.path)
        raise TypeError(f"no resource for {type(source).__name__}")

    def source(self) -> RecordSource:
        return open_source(self.time_column, url=self.url, table=self.table, path=self.path)


class RecordsResource(dg.ConfigurableResource):
    """Every pipeline's record source under one resource key, found by the pipeline's name:
    assets and sensors take it as a typed parameter (``records: RecordsResource``)."""

    sources: dict[str, RecordSourceConfig]

    @classmethod
    def of(cls, pipelines: Iterable[Pipeline]) -> RecordsResource:
        return cls(sources={p.name: RecordSourceConfig.of(p.source) for p in pipelines})

    def source(self, pipeline: str) -> RecordSource:
        config = self.sources.get(pipeline)
        if config is None:
            known = ", ".join(sorted(self.sources)) or "none"
            raise KeyError(f"no record source for pipeline '{pipeline}' (configured: {known})")
        return config.source()


class PlatformResource(dg.ConfigurableResource):
    """The platform state: its database (registry, audit, outbox, demo records; migrated on
    first use) and the artifact folder (models, references)."""

    database_url: str
    artifact_root: str
    artifact_key_file: str
    # the signing secret travels as an EnvVar reference: the UI shows its name, never its value
    artifact_key: str | None = None
    legacy_pickles: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> PlatformResource:
        return cls(
            database_url=settings.platform_database_url,
            artifact_root=str(settings.artifact_path),
            artifact_key_file=str(settings.artifact_key_path),
            artifact_key=_secret("RETRAIN_ARTIFACT_KEY", settings.artifact_key),
            legacy_pickles=settings.legacy_pickles,
        )

    def engine(self) -> sa.Engine:
        return platform_engine(self.database_url)

    def registry(self) -> Registry:
        return Registry(
            self.engine(),
            self.artifact_root,
            Path(self.artifact_key_file),
            key=self.artifact_key,
            legacy_pickles=self.legacy_pickles,
        )

    def references(self) -> ReferenceStore:
        return ReferenceStore(self.artifact_root)


class ClockResource(dg.ConfigurableResource):
    """What "now" is for the sensors, the schedules evaluated by hand and the assets that ask
    which labels have arrived: the wall clock (naive UTC), or a fixed ``moment`` when a
    simulation replays history (the demo), so that the newest complete period, the retrain
    cooldown and the labels seen are those of the simulated moment."""

    moment: str | None = None  # ISO 8601, naive UTC

    def now(self) -> datetime:
        if self.moment is not None:
            return datetime.fromisoformat(self.moment)
        return utc_now()


def _secret(variable: str, value: SecretStr | None) -> str | None:
    """An ``EnvVar`` when the value came from the environment (the UI then shows only the
    variable's name), else the value itself (from a settings file)."""
    if value is None:
        return None
    if os.environ.get(variable):
        return dg.EnvVar(variable)  # type: ignore[return-value]
    return value.get_secret_value()
