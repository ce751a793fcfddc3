"""Model versions: numbered per pipeline under an advisory lock, their artifacts written
before the commit and removed again if it fails, their status audited."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from retraining_assets.core import schema as tables
from retraining_assets.core.files import is_zip
from retraining_assets.core.locations import Location
from retraining_assets.core.registry.artifacts import (
    confined_path,
    reaching,
    read_verified,
    remove_files,
    sha256,
    write_version_files,
)
from retraining_assets.core.registry.audit import AuditLog
from retraining_assets.core.registry.identity import actual_identity
from retraining_assets.core.registry.records import (
    REGISTERED,
    STATUSES,
    ArtifactError,
    ArtifactRootError,
    LegacyPickleError,
    ModelVersion,
    UnknownVersionError,
    check_name,
    jsonable,
    naive_utc,
    record_from_row,
)
from retraining_assets.core.registry.signing import ArtifactSigner
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
        written: list[Location] = []
        try:
            with self.transaction() as connection:
                try:
                    version = self._next_version(connection, pipeline)
                    files = write_version_files(
                        self.artifact_root,
                        pipeline,
                        version,
                        self.signer,
                        (model_bytes, profile_bytes, profile_hash),
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

    def add_metrics(
        self,
        pipeline: str,
        version: int,
        metrics: Mapping[str, Any],
        *,
        connection: sa.Connection | None = None,
    ) -> ModelVersion:
        """Add ``metrics`` keys to a version's metrics (measured after registration, such as
        the permutation importance of the run's best candidate); an existing key is kept."""
        with self._writing(connection) as conn:
            current = self.get_version(pipeline, version, connection=conn).metrics or {}
            added = {k: v for k, v in jsonable(metrics).items() if k not in current}
            conn.execute(
                sa.update(tables.model_versions)
                .where(
                    tables.model_versions.c.pipeline == pipeline,
                    tables.model_versions.c.version == version,
                )
                .values(metrics={**current, **added})
            )
            return self.get_version(pipeline, version, connection=conn)

    @staticmethod
    def _check_status(status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {sorted(STATUSES)}")

    # --- artifacts ---------------------------------------------------------------------------

    def load_model_bytes(
        self, pipeline: str, version: int, *, connection: sa.Connection | None = None
    ) -> bytes:
        """The model file, refused (``ArtifactError`` naming the version) unless it lies
        inside the artifact root and carries a valid signature of the recorded SHA-256, and
        (with ``legacy_pickles`` off) unless it is a model zip rather than a legacy pickle."""
        record = self.get_version(pipeline, version, connection=connection)
        data = self._read_verified(record, _files_of(record)[0])
        if not self.legacy_pickles and not is_zip(data):
            raise LegacyPickleError(
                f"the model file of {pipeline} v{version} is a legacy pickle and "
                "RETRAIN_LEGACY_PICKLES is off; refusing to load it (retrain the model, or set "
                "RETRAIN_LEGACY_PICKLES=true if you trust this deployment's signing key)"
            )
        return data

    def load_profile_bytes(
        self, pipeline: str, version: int, *, connection: sa.Connection | None = None
    ) -> bytes | None:
        """The version's drift reference profile (checked likewise), None if it has none."""
        record = self.get_version(pipeline, version, connection=connection)
        files = _files_of(record)
        return self._read_verified(record, files[1]) if len(files) > 1 else None

    def _read_verified(self, record: ModelVersion, file: tuple[str, str, str | None, str]) -> bytes:
        _, uri, signature, checksum = file
        identity = (record.pipeline, record.version, uri, checksum, signature)
        return read_verified(self.artifact_root, self.signer, identity)

    def verify_artifacts(
        self, pipeline: str, version: int, *, connection: sa.Connection | None = None
    ) -> None:
        """Refuse (``ArtifactError`` naming the version) unless every file of ``version`` is
        inside the root and correctly signed: what a champion move checks before anything is
        announced or changed."""
        self.load_model_bytes(pipeline, version, connection=connection)
        self.load_profile_bytes(pipeline, version, connection=connection)

    def sign_artifacts(
        self,
        pipeline: str,
        *,
        previous: ArtifactSigner | None = None,
        trust_unsigned: bool = False,
        by: str,
        actual_user: str,
    ) -> dict[str, list[int]]:
        """Sign each version's files with the current key: those whose signature verifies
        under ``previous`` (a key rotation), and, with ``trust_unsigned``, those without a
        signature whose file still has the recorded SHA-256 (rows from before signing).
        Versions already signed with the current key are left alone; any other is refused and
        reported. Returns ``{"signed": [...], "current": [...], "refused": [...]}``."""
        outcome: dict[str, list[int]] = {"signed": [], "current": [], "refused": []}
        for record in self.list_versions(pipeline):
            files = _files_of(record)
            if all(self._verifies(self.signer, record, f) for f in files):
                outcome["current"].append(record.version)
                continue
            trusted = all(
                (previous is not None and self._verifies(previous, record, f))
                or (trust_unsigned and f[2] is None and self._checksum_holds(f))
                for f in files
            )
            if not trusted:
                outcome["refused"].append(record.version)
                continue
            signatures = {
                column: self.signer.sign(pipeline, record.version, uri, checksum)
                for column, uri, _, checksum in files
            }
            with self.transaction() as connection:
                connection.execute(
                    sa.update(tables.model_versions)
                    .where(
                        tables.model_versions.c.pipeline == pipeline,
                        tables.model_versions.c.version == record.version,
                    )
                    .values(**signatures)
                )
                self.audit(
                    pipeline, "artifacts_signed", version=record.version, by=by,
                    actual_user=actual_user, reason="rotation" if previous else "trusted",
                    details={"key": self.signer.origin}, connection=connection,
                )  # fmt: skip
            outcome["signed"].append(record.version)
        return outcome

    def _verifies(
        self, signer: ArtifactSigner, record: ModelVersion, file: tuple[str, str, str | None, str]
    ) -> bool:
        _, uri, signature, checksum = file
        return (
            signature is not None
            and self._checksum_holds(file)
            and signer.verify(signature, record.pipeline, record.version, uri, checksum)
        )

    def _checksum_holds(self, file: tuple[str, str, str | None, str]) -> bool:
        _, uri, _, checksum = file
        try:
            path = confined_path(self.artifact_root, uri, uri)
            with reaching(self.artifact_root, f"read {uri}"):
                return path.is_file() and sha256(path.read_bytes()) == checksum
        except ArtifactRootError:  # an unreachable bucket says nothing about the file
            raise
        except ArtifactError:
            return False

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


def _files_of(record: ModelVersion) -> list[tuple[str, str, str | None, str]]:
    """(signature column, relative URI, signature, SHA-256) of each of the version's files."""
    files = [
        ("artifact_signature", record.artifact_uri, record.artifact_signature,
         record.artifact_sha256),
    ]  # fmt: skip
    if record.profile_uri is not None and record.profile_sha256 is not None:
        files.append(
            ("profile_signature", record.profile_uri, record.profile_signature,
             record.profile_sha256)
        )  # fmt: skip
    return files


def _advisory_key(pipeline: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory lock (``hash()`` is salted)."""
    digest = hashlib.sha256(f"retraining_assets.registry:{pipeline}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
