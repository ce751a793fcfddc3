"""The registry's connection handling: one engine, one artifact root, and transactions that
several registry calls can share."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import sqlalchemy as sa

from retraining_assets.core.locations import Location, is_local, location
from retraining_assets.core.registry.signing import KEY_FILE, ArtifactSigner


class RegistryBase:
    """The engine, the artifact root and the transactions every part of the registry uses.

    Methods that change state accept an optional ``connection``: pass the one yielded by
    :meth:`transaction` to make several changes (e.g. resolve an approval and move the
    champion) one atomic transaction. Without it each method commits on its own.
    """

    def __init__(
        self, engine: sa.Engine, artifact_root: Location | str, key_file: Path | None = None,
        *, key: str | None = None, legacy_pickles: bool = True,
    ) -> None:  # fmt: skip
        """``key`` (``RETRAIN_ARTIFACT_KEY``) signs the artifacts; without it the key file
        (default: ``artifact.key`` beside the artifact root, i.e. in ``RETRAIN_HOME``),
        created on first use; an artifact root on object storage (``s3://bucket/prefix``) has
        no "beside", so there give the key or the key file. ``legacy_pickles``
        (``RETRAIN_LEGACY_PICKLES``): whether model files stored as pickles (before the zip
        format) may be loaded, after their signature."""
        self.engine = engine
        self.legacy_pickles = legacy_pickles
        self.artifact_root = location(artifact_root)
        self._key = key
        if key_file is None and not key and not is_local(self.artifact_root):
            raise ValueError(
                f"the artifact root {self.artifact_root} is on object storage: give the "
                "signing key (RETRAIN_ARTIFACT_KEY) or a key file, not one beside the root"
            )
        self.key_file = Path(key_file) if key_file else self.artifact_root.parent / KEY_FILE

    @cached_property
    def signer(self) -> ArtifactSigner:
        """The signing key, read (or the key file created) on first use."""
        if self._key:
            return ArtifactSigner.from_secret(self._key)
        return ArtifactSigner.from_file(self.key_file)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A write transaction, committed on success and rolled back on any exception."""
        with self.engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                # Take the write lock now: a deferred transaction that reads then writes can
                # fail with SQLITE_BUSY instead of waiting when another writer got in between.
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.begin()
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.commit()

    @contextlib.contextmanager
    def _writing(self, connection: sa.Connection | None) -> Iterator[sa.Connection]:
        """The caller's transaction when given (it commits), else a new one."""
        if connection is not None:
            yield connection
        else:
            with self.transaction() as own:
                yield own

    @contextlib.contextmanager
    def _reading(self, connection: sa.Connection | None) -> Iterator[sa.Connection]:
        if connection is not None:
            yield connection
        else:
            with self.engine.connect() as own:
                yield own
