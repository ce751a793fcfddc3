"""Registry records (model versions, alias moves, audit entries, approvals), their errors and
the conversions every table shares: names checked, times as naive UTC, values as plain JSON."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from retraining_assets.core.timestamps import iso_utc

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


class UnsignedArtifactError(CorruptArtifactError):
    """The version's row carries no signature: registered before signing, or forged."""


class ArtifactRootError(ArtifactError):
    """The artifact root itself cannot be reached: a missing bucket, refused credentials, an
    endpoint that does not answer. Not a corrupt file: nothing about the version is wrong."""


class LegacyPickleError(ArtifactError):
    """The model file is a legacy pickle and this registry loads no pickles."""


def version_name(version: int | None) -> str | None:
    """How a model version appears in messages and notifications: ``v3``."""
    return None if version is None else f"v{version}"


# --- records ---------------------------------------------------------------------------------


class _Record:
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: datetimes as ISO 8601 UTC."""
        return {
            key: iso_utc(value) if isinstance(value, datetime) else value
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
    artifact_uri: str  # relative to the artifact root
    artifact_sha256: str
    artifact_size: int
    profile_hash: str | None
    profile_uri: str | None
    profile_sha256: str | None
    dataset_spec: dict[str, Any]
    created_at: datetime
    artifact_signature: str | None = field(default=None, repr=False)
    profile_signature: str | None = field(default=None, repr=False)


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


def record_from_row(cls: type[R], row: sa.Row) -> R:
    values = {_RENAMED.get(key, key): value for key, value in row._mapping.items()}
    return cls(**{f.name: values[f.name] for f in fields(cls)})  # type: ignore[arg-type]


def naive_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        value = value.to_pydatetime()
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON: numpy values unwrapped, NaN/inf as None (PostgreSQL rejects
    them), datetimes as ISO strings. Anything else unknown is refused, not stringified."""
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date | Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalar or array
        return jsonable(value.tolist())
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    raise TypeError(f"cannot store a {type(value).__name__} as JSON: {value!r}")


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(
            f"invalid {kind} name {name!r}: use letters, digits, '_', '.', '-' (max 64)"
        )
    return name


class RowValues:
    """A dict viewed like an ``sa.Row``, to build a record from values just inserted."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._mapping = values
