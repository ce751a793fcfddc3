"""Model versions: numbered per pipeline under an advisory lock, their artifacts written
before the commit and removed again if it fails, their status audited."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from retraining_assets.core import schema as tables
from retraining_assets.core.registry.artifacts import (
    read_verified,
    remove_files,
    write_version_files,
)
from retraining_assets.core.registry.audit import AuditLog
from retraining_assets.core.registry.identity import actual_identity
from retraining_assets.core.registry.records import (
    REGISTERED,
    STATUSES,
    ModelVersion,
    UnknownVersionError,
    check_name,
    jsonable,
    naive_utc,
    record_from_row,
)
from retraining_assets.core.timestamps import utc_now


class Versions(AuditLog):
    """Register, read and re-status model versions; load their verified artifacts."""

    def register_version(
        self,
        pipeline: str,
        *,
        family: str,
        model_bytes: bytes,
        params: Mapping[str, Any],
        metrics: Mapping[str, Any],
        train_start: datetime | None,
        train_end: datetime | None,
        data_fingerprint: str,
        code_version: str,
        dataset_spec: Mapping[str, Any],
        profile_bytes: bytes | None = None,
        profile_hash: str | None = None,
        run_id: str | None = None,
        status: str = REGISTERED,
        by: str | None = None,
        actual_user: str | None = None,
        reason: str = "",
    ) -> ModelVersion:
        """Assign the next version number, write the artifacts, record the row and a
        ``candidate_registered`` audit entry. The files are in place before the commit and
        removed again if the transaction fails, so a row never points at a missing file and a
        failed registration leaves no files."""
        check_name("pipeline", pipeline)
        self._check_status(status)
        actual_user = actual_user or actual_identity()
        row: dict[str, Any] = {
            "pipeline": pipeline,
            "family": family,
            "status": status,
            "params": jsonable(params),
            "metrics": jsonable(metrics),
            "train_start": naive_utc(train_start),
            "train_end": naive_utc(train_end),
            "data_fingerprint": data_fingerprint,
            "code_version": code_version,
            "run_id": run_id,
            "dataset_spec": jsonable(dataset_spec),
        }
        written: list[Path] = []
        try:
            with self.transaction() as connection:
                try:
                    version = self._next_version(connection, pipeline)
                    files = write_version_files(
                        self.artifact_root / pipeline / f"v{version}",
                        model_bytes,
                        profile_bytes,
                        profile_hash,
                        written,
                    )
                    connection.execute(
                        sa.insert(tables.model_versions).values(
                            **row, **files, version=version, created_at=utc_now()
                        )
                    )
                    self.audit(
                        pipeline,
                        "candidate_registered",
                        version=version,
                        by=by or actual_user,
                        actual_user=actual_user,
                        reason=reason,
                        connection=connection,
                        details={
                            "family": family,
                            "metrics": row["metrics"],
                            "run_id": run_id,
                            "artifact_sha256": files["artifact_sha256"],
                        },
                    )
                except BaseException:
                    # Remove before the rollback releases the version: afterwards another
                    # registration may already be writing the same folder.
                    remove_files(written)
                    raise
        except BaseException:
            remove_files(written)  # the commit itself failed
            raise
        return self.get_version(pipeline, version)

    def _next_version(self, connection: sa.Connection, pipeline: str) -> int:
        if connection.dialect.name == "postgresql":
            # Serialises registrations of one pipeline until commit; SQLite's BEGIN IMMEDIATE
            # already did. The unique constraint stays as the last guard.
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_advisory_key(pipeline))))
        latest = connection.scalar(
            sa.select(sa.func.max(tables.model_versions.c.version)).where(
                tables.model_versions.c.pipeline == pipeline
            )
        )
        return (latest or 0) + 1

    def get_version(
        self, pipeline: str, version: int, *, connection: sa.Connection | None = None
    ) -> ModelVersion:
        """The version, or ``UnknownVersionError`` naming the pipeline and the version."""
        with self._reading(connection) as conn:
            row = conn.execute(
                sa.select(tables.model_versions).where(
                    tables.model_versions.c.pipeline == pipeline,
                    tables.model_versions.c.version == version,
                )
            ).one_or_none()
        if row is None:
            raise UnknownVersionError(pipeline, version)
        return record_from_row(ModelVersion, row)

    def list_versions(self, pipeline: str) -> list[ModelVersion]:
        """Every version of ``pipeline``, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(tables.model_versions)
                .where(tables.model_versions.c.pipeline == pipeline)
                .order_by(tables.model_versions.c.version)
            ).all()
        return [record_from_row(ModelVersion, row) for row in rows]

    def set_status(
        self,
        pipeline: str,
        version: int,
        status: str,
        *,
        by: str,
        actual_user: str,
        reason: str = "",
        connection: sa.Connection | None = None,
    ) -> ModelVersion:
        """Change a version's status, audited as ``status`` with the old and new value."""
        self._check_status(status)
        with self._writing(connection) as conn:
            previous = self.get_version(pipeline, version, connection=conn).status
            self._set_status_quietly(conn, pipeline, version, status)
            self.audit(
                pipeline,
                "status",
                version=version,
                by=by,
                actual_user=actual_user,
                reason=reason,
                details={"from": previous, "to": status},
                connection=conn,
            )
            return self.get_version(pipeline, version, connection=conn)

    @staticmethod
    def _check_status(status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {sorted(STATUSES)}")

    # --- artifacts ---------------------------------------------------------------------------

    def load_model_bytes(self, pipeline: str, version: int) -> bytes:
        """The model file, refused unless its SHA-256 is the one recorded at registration."""
        record = self.get_version(pipeline, version)
        return read_verified(record.artifact_uri, record.artifact_sha256, pipeline, version)

    def load_profile_bytes(self, pipeline: str, version: int) -> bytes | None:
        """The version's drift reference profile (checked likewise), None if it has none."""
        record = self.get_version(pipeline, version)
        if record.profile_uri is None or record.profile_sha256 is None:
            return None
        return read_verified(record.profile_uri, record.profile_sha256, pipeline, version)

    @staticmethod
    def _set_status_quietly(
        connection: sa.Connection, pipeline: str, version: int, status: str
    ) -> None:
        # The caller audits the approval itself; a separate "status" entry would repeat it.
        connection.execute(
            sa.update(tables.model_versions)
            .where(
                tables.model_versions.c.pipeline == pipeline,
                tables.model_versions.c.version == version,
            )
            .values(status=status)
        )


def _advisory_key(pipeline: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory lock (``hash()`` is salted)."""
    digest = hashlib.sha256(f"retraining_assets.registry:{pipeline}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
