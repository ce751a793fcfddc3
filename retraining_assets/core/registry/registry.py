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

import contextlib
import getpass
import hashlib
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa

from retraining_assets.core import schema as tables
from retraining_assets.core.database import platform_engine

if TYPE_CHECKING:
    from retraining_assets.settings import Settings

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "STATUSES",
    "AliasConflictError",
    "AliasMove",
    "ApprovalError",
    "ArtifactError",
    "AuditEntry",
    "CorruptArtifactError",
    "MissingArtifactError",
    "ModelVersion",
    "PendingApproval",
    "Registry",
    "RegistryError",
    "UnknownVersionError",
    "actual_identity",
    "code_version",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
REGISTERED, REJECTED, PENDING_APPROVAL, APPROVED, ARCHIVED = (
    "registered",
    "rejected",
    "pending_approval",
    "approved",
    "archived",
)
STATUSES = frozenset({REGISTERED, REJECTED, PENDING_APPROVAL, APPROVED, ARCHIVED})
SUPERSEDED = "superseded"  # an approval request replaced by a newer candidate's
MODEL_FILE = "model.bin"
PROFILE_FILE = "profile.bin"
# Pipeline and alias names become folder names: no separators, no "..", nothing surprising.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


# --- errors ----------------------------------------------------------------------------------


class RegistryError(RuntimeError):
    """A registry operation was refused; the message says what and why."""


class UnknownVersionError(RegistryError, LookupError):
    def __init__(self, pipeline: str, version: int) -> None:
        super().__init__(f"pipeline {pipeline!r} has no model version {version}")
        self.pipeline, self.version = pipeline, version


class AliasConflictError(RegistryError):
    """The alias no longer points where the caller expected: nothing was changed."""

    def __init__(self, pipeline: str, alias: str, expected: int | None, found: object) -> None:
        super().__init__(
            f"{pipeline}@{alias} was expected at version {expected} but is at {found}; "
            "another run moved it or the evaluation is stale. Nothing was changed."
        )
        self.pipeline, self.alias, self.expected, self.found = pipeline, alias, expected, found


class ApprovalError(RegistryError):
    """An approval that does not exist, or was already resolved, cannot be resolved."""


class ArtifactError(RegistryError):
    """An artifact file cannot be used."""


class CorruptArtifactError(ArtifactError):
    """The file's SHA-256 is not the one recorded when it was registered."""


class MissingArtifactError(CorruptArtifactError):
    """The file recorded for a version is gone (a kind of corruption: callers catch both)."""


# --- records ---------------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


class _Record:
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: datetimes as ISO 8601 UTC."""
        return {
            key: _iso(value) if isinstance(value, datetime) else value
            for key, value in asdict(self).items()  # type: ignore[call-overload]
        }


@dataclass(frozen=True)
class ModelVersion(_Record):
    pipeline: str
    version: int
    family: str
    status: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    train_start: datetime | None
    train_end: datetime | None
    data_fingerprint: str
    code_version: str
    run_id: str | None
    artifact_uri: str
    artifact_sha256: str
    artifact_size: int
    profile_hash: str | None
    profile_uri: str | None
    profile_sha256: str | None
    dataset_spec: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class AliasMove(_Record):
    id: int
    pipeline: str
    alias: str
    version: int | None  # None: the alias was cleared
    previous_version: int | None
    at: datetime
    by: str
    actual_user: str
    reason: str
    action: str


@dataclass(frozen=True)
class AuditEntry(_Record):
    id: int
    pipeline: str
    at: datetime
    action: str
    version: int | None
    by: str
    actual_user: str
    reason: str
    details: dict[str, Any] | None


@dataclass(frozen=True)
class PendingApproval(_Record):
    id: int
    pipeline: str
    version: int
    status: str
    decision: dict[str, Any]
    requested_at: datetime
    requested_by: str
    resolved_at: datetime | None
    resolved_by: str | None
    resolved_actual_user: str | None
    resolution_reason: str | None


R = TypeVar("R", bound=_Record)
# Columns whose name differs from the field: "by" is an SQL keyword.
_RENAMED = {"claimed_by": "by"}


def _record(cls: type[R], row: sa.Row) -> R:
    values = {_RENAMED.get(key, key): value for key, value in row._mapping.items()}
    return cls(**{f.name: values[f.name] for f in fields(cls)})  # type: ignore[arg-type]


# --- helpers ---------------------------------------------------------------------------------


def actual_identity() -> str:
    """The OS user running this process (the Dagster layer passes the UI user instead)."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in a container, no USER variable: still say something
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def code_version() -> str:
    """The package version plus the git commit when run from a checkout, e.g. ``0.1.0+g1a2b3c4``."""
    try:
        version = importlib_metadata.version("retraining_assets")
    except importlib_metadata.PackageNotFoundError:
        version = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        if commit:
            return f"{version}+g{commit}"
    return version


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        value = value.to_pydatetime()
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON: numpy values unwrapped, NaN/inf as None (PostgreSQL rejects
    them), datetimes as ISO strings. Anything else unknown is refused, not stringified."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date | Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _jsonable(value.tolist())
    if hasattr(value, "to_dict"):
        return _jsonable(value.to_dict())
    raise TypeError(f"cannot store a {type(value).__name__} as JSON: {value!r}")


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(
            f"invalid {kind} name {name!r}: use letters, digits, '_', '.', '-' (max 64)"
        )
    return name


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then ``os.replace``: a reader sees
    the old file or the whole new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _path_from_uri(uri: str) -> Path:
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise ArtifactError(f"unsupported artifact URI {uri!r}: only file:// is supported")
    return Path(unquote(parts.path))


def _advisory_key(pipeline: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory lock (``hash()`` is salted)."""
    digest = hashlib.sha256(f"retraining_assets.registry:{pipeline}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# --- the registry ----------------------------------------------------------------------------


class Registry:
    """Model versions, aliases, audit log, approvals and watermarks of every pipeline.

    Methods that change state accept an optional ``connection``: pass the one yielded by
    :meth:`transaction` to make several changes (e.g. resolve an approval and move the
    champion) one atomic transaction. Without it each method commits on its own.
    """

    def __init__(self, engine: sa.Engine, artifact_root: Path) -> None:
        self.engine = engine
        self.artifact_root = Path(artifact_root).resolve()

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        """The platform database (migrated) and the configured artifact folder."""
        return cls(platform_engine(settings.platform_database_url), settings.artifact_path)

    # --- transactions ------------------------------------------------------------------------

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

    # --- versions ----------------------------------------------------------------------------

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
        _check_name("pipeline", pipeline)
        self._check_status(status)
        actual_user = actual_user or actual_identity()
        row: dict[str, Any] = {
            "pipeline": pipeline,
            "family": family,
            "status": status,
            "params": _jsonable(params),
            "metrics": _jsonable(metrics),
            "train_start": _naive_utc(train_start),
            "train_end": _naive_utc(train_end),
            "data_fingerprint": data_fingerprint,
            "code_version": code_version,
            "run_id": run_id,
            "dataset_spec": _jsonable(dataset_spec),
        }
        written: list[Path] = []
        try:
            with self.transaction() as connection:
                try:
                    version = self._next_version(connection, pipeline)
                    files = self._write_artifacts(
                        pipeline, version, model_bytes, profile_bytes, profile_hash, written
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
                    self._remove(written)
                    raise
        except BaseException:
            self._remove(written)  # the commit itself failed
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

    def _write_artifacts(
        self,
        pipeline: str,
        version: int,
        model_bytes: bytes,
        profile_bytes: bytes | None,
        profile_hash: str | None,
        written: list[Path],
    ) -> dict[str, Any]:
        """Write ``v<version>/model.bin`` (and ``profile.bin``); return their columns."""
        folder = self.artifact_root / pipeline / f"v{version}"
        columns: dict[str, Any] = {
            "artifact_uri": self._store(folder / MODEL_FILE, model_bytes, written),
            "artifact_sha256": _sha256(model_bytes),
            "artifact_size": len(model_bytes),
            "profile_uri": None,
            "profile_sha256": None,
            "profile_hash": None,
        }
        if profile_bytes is not None:
            checksum = _sha256(profile_bytes)
            columns["profile_uri"] = self._store(folder / PROFILE_FILE, profile_bytes, written)
            columns["profile_sha256"] = checksum
            columns["profile_hash"] = profile_hash or checksum
        return columns

    @staticmethod
    def _store(path: Path, data: bytes, written: list[Path]) -> str:
        """Write ``data`` atomically to ``path``; its ``file://`` URI."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"artifact {path.name} must be bytes, not {type(data).__name__}")
        written.append(path)
        _write_atomically(path, bytes(data))
        return path.as_uri()

    @staticmethod
    def _remove(paths: list[Path]) -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for folder in {path.parent for path in paths}:
            with contextlib.suppress(OSError):  # not empty: something else lives there
                folder.rmdir()
        paths.clear()

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
        return _record(ModelVersion, row)

    def list_versions(self, pipeline: str) -> list[ModelVersion]:
        """Every version of ``pipeline``, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(tables.model_versions)
                .where(tables.model_versions.c.pipeline == pipeline)
                .order_by(tables.model_versions.c.version)
            ).all()
        return [_record(ModelVersion, row) for row in rows]

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
        return self._verified(record.artifact_uri, record.artifact_sha256, pipeline, version)

    def load_profile_bytes(self, pipeline: str, version: int) -> bytes | None:
        """The version's drift reference profile (checked likewise), None if it has none."""
        record = self.get_version(pipeline, version)
        if record.profile_uri is None or record.profile_sha256 is None:
            return None
        return self._verified(record.profile_uri, record.profile_sha256, pipeline, version)

    @staticmethod
    def _verified(uri: str, expected: str, pipeline: str, version: int) -> bytes:
        path = _path_from_uri(uri)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MissingArtifactError(
                f"artifact {path} of {pipeline} v{version} is missing (expected SHA-256 "
                f"{expected}); restore it from a backup or roll back to another version"
            ) from None
        except OSError as error:
            raise ArtifactError(
                f"cannot read artifact {path} of {pipeline} v{version}: {error.strerror or error}"
            ) from None
        actual = _sha256(data)
        if actual != expected:
            raise CorruptArtifactError(
                f"artifact {path} of {pipeline} v{version} is corrupt: SHA-256 {actual}, "
                f"expected {expected}; refusing to load it"
            )
        return data

    # --- aliases -----------------------------------------------------------------------------

    def move_alias(
        self,
        pipeline: str,
        alias: str,
        to_version: int,
        *,
        expected_current: int | None,
        by: str,
        actual_user: str,
        reason: str,
        action: str = "promote",
        details: Mapping[str, Any] | None = None,
        connection: sa.Connection | None = None,
    ) -> AliasMove:
        """Point ``alias`` at ``to_version`` if it still points at ``expected_current`` (None:
        not set yet); else ``AliasConflictError`` and nothing changes. The move, its history
        row and its audit row are one transaction. A rejected version cannot get an alias."""
        _check_name("alias", alias)
        with self._writing(connection) as conn:
            target = self.get_version(pipeline, to_version, connection=conn)
            if target.status == REJECTED:
                raise RegistryError(
                    f"{pipeline} v{to_version} was rejected; it cannot become {alias}"
                )
            self._compare(conn, pipeline, alias, expected_current)
            values = {"version": to_version, "moved_at": utc_now(), "moved_by": by}
            if expected_current is None:
                try:
                    conn.execute(
                        sa.insert(tables.aliases).values(pipeline=pipeline, alias=alias, **values)
                    )
                except sa.exc.IntegrityError:  # PostgreSQL: a racing first move committed
                    raise AliasConflictError(pipeline, alias, None, "set concurrently") from None
            else:
                self._swap(
                    conn,
                    pipeline,
                    alias,
                    expected_current,
                    sa.update(tables.aliases).values(**values),
                )
            return self._record_move(
                conn,
                pipeline,
                alias,
                to_version,
                expected_current,
                by=by,
                actual_user=actual_user,
                reason=reason,
                action=action,
                details=details,
            )

    def clear_alias(
        self,
        pipeline: str,
        alias: str,
        *,
        expected_current: int,
        by: str,
        actual_user: str,
        reason: str,
        action: str = "clear",
        details: Mapping[str, Any] | None = None,
        connection: sa.Connection | None = None,
    ) -> AliasMove:
        """Remove ``alias`` (e.g. end a challenger) if it still points at ``expected_current``;
        recorded in the history (version None) and the audit log like a move."""
        _check_name("alias", alias)
        with self._writing(connection) as conn:
            self._compare(conn, pipeline, alias, expected_current)
            self._swap(conn, pipeline, alias, expected_current, sa.delete(tables.aliases))
            return self._record_move(
                conn,
                pipeline,
                alias,
                None,
                expected_current,
                by=by,
                actual_user=actual_user,
                reason=reason,
                action=action,
                details=details,
            )

    def rollback(
        self,
        pipeline: str,
        to_version: int,
        *,
        expected_current: int | None,
        by: str,
        actual_user: str,
        reason: str,
        alias: str = CHAMPION,
        connection: sa.Connection | None = None,
    ) -> AliasMove:
        """Move the champion back to an earlier version (its own drift profile comes along)."""
        return self.move_alias(
            pipeline,
            alias,
            to_version,
            expected_current=expected_current,
            by=by,
            actual_user=actual_user,
            reason=reason,
            action="rollback",
            connection=connection,
        )

    def get_alias(
        self, pipeline: str, alias: str, *, connection: sa.Connection | None = None
    ) -> ModelVersion | None:
        with self._reading(connection) as conn:
            version = self._current(conn, pipeline, alias)
            return None if version is None else self.get_version(pipeline, version, connection=conn)

    def alias_history(self, pipeline: str, alias: str | None = None) -> list[AliasMove]:
        """Every move of ``alias`` (or of all aliases of ``pipeline``), oldest first."""
        query = sa.select(tables.alias_history).where(tables.alias_history.c.pipeline == pipeline)
        if alias is not None:
            query = query.where(tables.alias_history.c.alias == alias)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(tables.alias_history.c.id)).all()
        return [_record(AliasMove, row) for row in rows]

    @staticmethod
    def lock_alias(connection: sa.Connection, pipeline: str, alias: str) -> int | None:
        """In a write transaction: the alias's version, its row locked until the transaction
        ends, so writers that decide from it take turns (PostgreSQL ``SELECT ... FOR UPDATE``;
        SQLite's ``BEGIN IMMEDIATE`` already serialises writers)."""
        return connection.scalar(
            sa.select(tables.aliases.c.version)
            .where(tables.aliases.c.pipeline == pipeline, tables.aliases.c.alias == alias)
            .with_for_update()
        )

    @staticmethod
    def _current(connection: sa.Connection, pipeline: str, alias: str) -> int | None:
        return connection.scalar(
            sa.select(tables.aliases.c.version).where(
                tables.aliases.c.pipeline == pipeline, tables.aliases.c.alias == alias
            )
        )

    def _compare(
        self, connection: sa.Connection, pipeline: str, alias: str, expected: int | None
    ) -> None:
        # Fast refusal with the value actually found; the conditional write is the real guard.
        current = self._current(connection, pipeline, alias)
        if current != expected:
            raise AliasConflictError(pipeline, alias, expected, current)

    @staticmethod
    def _swap(
        connection: sa.Connection,
        pipeline: str,
        alias: str,
        expected: int,
        statement: sa.Update | sa.Delete,
    ) -> None:
        """Run ``statement`` on the alias row only if it still holds ``expected``."""
        changed = connection.execute(
            statement.where(
                tables.aliases.c.pipeline == pipeline,
                tables.aliases.c.alias == alias,
                tables.aliases.c.version == expected,
            )
        ).rowcount
        if changed != 1:  # PostgreSQL: a racing move committed after our read
            raise AliasConflictError(pipeline, alias, expected, "moved concurrently")

    def _record_move(
        self,
        connection: sa.Connection,
        pipeline: str,
        alias: str,
        version: int | None,
        previous: int | None,
        *,
        by: str,
        actual_user: str,
        reason: str,
        action: str,
        details: Mapping[str, Any] | None,
    ) -> AliasMove:
        row = {
            "pipeline": pipeline,
            "alias": alias,
            "version": version,
            "previous_version": previous,
            "at": utc_now(),
            "claimed_by": by,
            "actual_user": actual_user,
            "reason": reason,
            "action": action,
        }
        move_id = connection.execute(
            sa.insert(tables.alias_history).values(row)
        ).inserted_primary_key[0]
        self.audit(
            pipeline,
            action,
            version=version,
            by=by,
            actual_user=actual_user,
            reason=reason,
            details={"alias": alias, "from": previous, "to": version, **(details or {})},
            connection=connection,
        )
        return _record(AliasMove, _Row({**row, "id": move_id}))

    # --- audit log ---------------------------------------------------------------------------

    def audit(
        self,
        pipeline: str,
        action: str,
        *,
        version: int | None = None,
        by: str,
        actual_user: str,
        reason: str = "",
        details: Mapping[str, Any] | None = None,
        connection: sa.Connection | None = None,
    ) -> AuditEntry:
        """Append one entry: who claimed (``by``), who actually acted, what, why, with what
        figures. The registry never updates or deletes audit rows."""
        row = {
            "pipeline": pipeline,
            "at": utc_now(),
            "action": action,
            "version": version,
            "claimed_by": by,
            "actual_user": actual_user,
            "reason": reason,
            "details": None if details is None else _jsonable(details),
        }
        with self._writing(connection) as conn:
            entry_id = conn.execute(sa.insert(tables.audit_log).values(row)).inserted_primary_key[0]
        return _record(AuditEntry, _Row({**row, "id": entry_id}))

    def audit_log(self, pipeline: str, limit: int | None = None) -> list[AuditEntry]:
        """The pipeline's audit entries, oldest first; ``limit`` keeps the newest ones."""
        query = sa.select(tables.audit_log).where(tables.audit_log.c.pipeline == pipeline)
        with self.engine.connect() as connection:
            if limit is None:
                rows = connection.execute(query.order_by(tables.audit_log.c.id)).all()
            else:
                rows = connection.execute(
                    query.order_by(tables.audit_log.c.id.desc()).limit(limit)
                ).all()[::-1]
        return [_record(AuditEntry, row) for row in rows]

    # --- approvals ---------------------------------------------------------------------------

    def request_approval(
        self,
        pipeline: str,
        version: int,
        *,
        decision: Mapping[str, Any],
        by: str,
        actual_user: str | None = None,
        reason: str = "",
        connection: sa.Connection | None = None,
    ) -> PendingApproval:
        """Record that ``version`` waits for a person (status ``pending_approval``), audited
        as ``approval_requested`` with the decision. One request per version.

        The newest candidate was judged on the newest data: it supersedes the pipeline's other
        pending requests in the same transaction (approval status ``superseded``, the versions
        back to ``registered``, audited as ``approval_superseded``), so administrators decide
        one candidate at a time and an old one cannot be approved by mistake."""
        actual_user = actual_user or actual_identity()
        decision = _jsonable(decision)
        with self._writing(connection) as conn:
            self.get_version(pipeline, version, connection=conn)
            existing = self._approval(conn, pipeline, version)
            if existing is not None:
                raise ApprovalError(
                    f"{pipeline} v{version} already has an approval request ({existing.status})"
                )
            conn.execute(
                sa.insert(tables.approvals).values(
                    pipeline=pipeline,
                    version=version,
                    status="pending",
                    decision=decision,
                    requested_at=utc_now(),
                    requested_by=by,
                )
            )
            self._supersede_pending(conn, pipeline, version, by, actual_user)
            self._set_status_quietly(conn, pipeline, version, PENDING_APPROVAL)
            self.audit(
                pipeline,
                "approval_requested",
                version=version,
                by=by,
                actual_user=actual_user,
                reason=reason,
                details={"decision": decision},
                connection=conn,
            )
            return self._approval(conn, pipeline, version)  # type: ignore[return-value]

    def _supersede_pending(
        self, conn: sa.Connection, pipeline: str, version: int, by: str, actual_user: str
    ) -> None:
        approvals = tables.approvals
        older = (
            conn.execute(
                sa.select(approvals.c.version).where(
                    approvals.c.pipeline == pipeline,
                    approvals.c.status == "pending",
                    approvals.c.version != version,
                )
            )
            .scalars()
            .all()
        )
        reason = f"superseded by v{version}, judged on newer data"
        for old in older:
            self._resolve(
                conn, pipeline, old, (SUPERSEDED, REGISTERED, "approval_superseded"),
                by=by, actual_user=actual_user, reason=reason,
            )  # fmt: skip

    def _resolve(
        self,
        conn: sa.Connection,
        pipeline: str,
        version: int,
        outcome: tuple[str, str, str],
        *,
        by: str,
        actual_user: str,
        reason: str,
    ) -> bool:
        """Resolve a pending request by compare-and-set (False: it was not pending); then
        the version's status and the audit row. ``outcome``: (approval status, version
        status, audit action)."""
        approvals = tables.approvals
        status, version_status, action = outcome
        resolved = conn.execute(
            sa.update(approvals)
            .where(
                approvals.c.pipeline == pipeline,
                approvals.c.version == version,
                approvals.c.status == "pending",
            )
            .values(
                status=status,
                resolved_at=utc_now(),
                resolved_by=by,
                resolved_actual_user=actual_user,
                resolution_reason=reason,
            )
        ).rowcount
        if resolved != 1:
            return False
        self._set_status_quietly(conn, pipeline, version, version_status)
        self.audit(
            pipeline,
            action,
            version=version,
            by=by,
            actual_user=actual_user,
            reason=reason,
            connection=conn,
        )
        return True

    def pending_approvals(self, pipeline: str) -> list[PendingApproval]:
        """Unresolved approval requests of ``pipeline``, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(tables.approvals)
                .where(
                    tables.approvals.c.pipeline == pipeline, tables.approvals.c.status == "pending"
                )
                .order_by(tables.approvals.c.id)
            ).all()
        return [_record(PendingApproval, row) for row in rows]

    def get_approval(self, pipeline: str, version: int) -> PendingApproval | None:
        with self.engine.connect() as connection:
            return self._approval(connection, pipeline, version)

    def resolve_approval(
        self,
        pipeline: str,
        version: int,
        *,
        approved: bool,
        by: str,
        actual_user: str,
        reason: str,
        connection: sa.Connection | None = None,
    ) -> PendingApproval:
        """Approve or reject a pending request, once: an unknown or already resolved request
        raises ``ApprovalError``. The version's status becomes approved/rejected; audited as
        ``approve``/``reject``."""
        outcome = APPROVED if approved else REJECTED
        action = "approve" if approved else "reject"
        with self._writing(connection) as conn:
            resolved = self._resolve(
                conn, pipeline, version, (outcome, outcome, action),
                by=by, actual_user=actual_user, reason=reason,
            )  # fmt: skip
            if not resolved:
                existing = self._approval(conn, pipeline, version)
                if existing is None:
                    raise ApprovalError(f"{pipeline} v{version} has no approval request")
                raise ApprovalError(
                    f"the approval of {pipeline} v{version} was already resolved "
                    f"({existing.status} by {existing.resolved_by} at "
                    f"{existing.resolved_at and _iso(existing.resolved_at)})"
                )
            return self._approval(conn, pipeline, version)  # type: ignore[return-value]

    def approve_and_promote(
        self,
        pipeline: str,
        version: int,
        *,
        expected_current: int | None,
        by: str,
        actual_user: str,
        reason: str,
        alias: str = CHAMPION,
        details: Mapping[str, Any] | None = None,
        connection: sa.Connection | None = None,
    ) -> AliasMove:
        """Approve the pending request and move ``alias`` to ``version`` in one transaction
        (the caller's, if given): if the champion moved meanwhile, the approval stays pending
        too."""
        with self._writing(connection) as conn:
            self.resolve_approval(
                pipeline,
                version,
                approved=True,
                by=by,
                actual_user=actual_user,
                reason=reason,
                connection=conn,
            )
            return self.move_alias(
                pipeline,
                alias,
                version,
                expected_current=expected_current,
                by=by,
                actual_user=actual_user,
                reason=reason,
                action="promote",
                details=details,
                connection=conn,
            )

    @staticmethod
    def _approval(connection: sa.Connection, pipeline: str, version: int) -> PendingApproval | None:
        row = connection.execute(
            sa.select(tables.approvals).where(
                tables.approvals.c.pipeline == pipeline, tables.approvals.c.version == version
            )
        ).one_or_none()
        return None if row is None else _record(PendingApproval, row)

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

    # --- training watermark ------------------------------------------------------------------

    def set_watermark(
        self,
        pipeline: str,
        value: datetime,
        *,
        run_id: str | None = None,
        connection: sa.Connection | None = None,
    ) -> None:
        """The newest record time used by the last registered candidates (an upsert)."""
        row = {
            "pipeline": pipeline,
            "watermark": _naive_utc(value),
            "run_id": run_id,
            "updated_at": utc_now(),
        }
        with self._writing(connection) as conn:
            insert = _dialect_insert(conn)(tables.training_watermarks).values(row)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[tables.training_watermarks.c.pipeline],
                    set_={
                        key: insert.excluded[key] for key in ("watermark", "run_id", "updated_at")
                    },
                )
            )

    def get_watermark(self, pipeline: str) -> datetime | None:
        """The watermark as naive UTC, None before the first training."""
        with self.engine.connect() as connection:
            return connection.scalar(
                sa.select(tables.training_watermarks.c.watermark).where(
                    tables.training_watermarks.c.pipeline == pipeline
                )
            )


def _dialect_insert(connection: sa.Connection) -> Any:
    """The dialect's INSERT with ``on_conflict_do_update`` (both backends have one)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


class _Row:
    """A dict viewed like an ``sa.Row``, to build a record from values just inserted."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._mapping = values
