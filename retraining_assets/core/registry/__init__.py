"""The model registry: numbered versions, signed artifacts, aliases with their full history,
an append-only audit log, pending approvals and the training watermark.

``records`` holds the rows and errors, ``artifacts`` the files, ``signing`` their HMAC,
``versions``, ``aliases``, ``audit``, ``approvals``, ``watermark`` and ``judgements`` one
table each,
``registry`` the facade that joins them. Import from here:
``from retraining_assets.core.registry import Registry``.
"""

from retraining_assets.core.registry.identity import Actor, actual_identity, code_version
from retraining_assets.core.registry.records import (
    APPROVED,
    ARCHIVED,
    CHALLENGER,
    CHAMPION,
    PENDING_APPROVAL,
    REGISTERED,
    REJECTED,
    STATUSES,
    AliasConflictError,
    AliasMove,
    ApprovalError,
    ArtifactError,
    ArtifactRootError,
    AuditEntry,
    CorruptArtifactError,
    LegacyPickleError,
    MissingArtifactError,
    ModelVersion,
    PendingApproval,
    RegistryError,
    UnknownVersionError,
    UnsignedArtifactError,
    version_name,
)
from retraining_assets.core.registry.registry import Registry
from retraining_assets.core.registry.signing import ArtifactKeyError, ArtifactSigner
from retraining_assets.core.timestamps import utc_now

__all__ = [
    "APPROVED",
    "ARCHIVED",
    "CHALLENGER",
    "CHAMPION",
    "PENDING_APPROVAL",
    "REGISTERED",
    "REJECTED",
    "STATUSES",
    "Actor",
    "AliasConflictError",
    "AliasMove",
    "ApprovalError",
    "ArtifactError",
    "ArtifactKeyError",
    "ArtifactRootError",
    "ArtifactSigner",
    "AuditEntry",
    "CorruptArtifactError",
    "LegacyPickleError",
    "MissingArtifactError",
    "ModelVersion",
    "PendingApproval",
    "Registry",
    "RegistryError",
    "UnknownVersionError",
    "UnsignedArtifactError",
    "actual_identity",
    "code_version",
    "utc_now",
    "version_name",
]
