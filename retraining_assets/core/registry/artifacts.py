"""Artifact files: written atomically under ``<root>/<pipeline>/v<version>/``, recorded by a
URI relative to the artifact root, with a SHA-256 and an HMAC signature (``signing``). On every
read the path must stay inside the root and the signature must verify before a byte is used.

The root is a local folder or an fsspec URL (``s3://bucket/prefix``, ``core.locations``); a
root that cannot be reached is one ``ArtifactRootError`` naming RETRAIN_ARTIFACT_ROOT."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from retraining_assets.core.locations import Location, is_local, write_file
from retraining_assets.core.registry.records import (
    ArtifactError,
    ArtifactRootError,
    CorruptArtifactError,
    MissingArtifactError,
    UnsignedArtifactError,
)
from retraining_assets.core.registry.signing import ArtifactSigner

MODEL_FILE = "model.bin"
PROFILE_FILE = "profile.bin"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def version_folder(pipeline: str, version: int) -> str:
    """Where a version's files live, relative to the artifact root."""
    return f"{pipeline}/v{version}"


def write_version_files(
    root: Location,
    pipeline: str,
    version: int,
    signer: ArtifactSigner,
    files: tuple[bytes, bytes | None, str | None],
    written: list[Location],
) -> dict[str, Any]:
    """Write ``model.bin`` (and ``profile.bin``) of ``pipeline`` v``version``, signed; return
    their registry columns. ``files``: model bytes, profile bytes, profile content hash. Every
    path is appended to ``written`` before it is written, so a failure can remove them all."""
    model_bytes, profile_bytes, profile_hash = files
    folder = version_folder(pipeline, version)
    model_uri = f"{folder}/{MODEL_FILE}"
    checksum = sha256(_checked_bytes(model_uri, model_bytes))
    columns: dict[str, Any] = {
        "artifact_uri": _store(root, model_uri, model_bytes, written),
        "artifact_sha256": checksum,
        "artifact_signature": signer.sign(pipeline, version, model_uri, checksum),
        "artifact_size": len(model_bytes),
        "profile_uri": None,
        "profile_sha256": None,
        "profile_signature": None,
        "profile_hash": None,
    }
    if profile_bytes is not None:
        profile_uri = f"{folder}/{PROFILE_FILE}"
        checksum = sha256(_checked_bytes(profile_uri, profile_bytes))
        columns["profile_uri"] = _store(root, profile_uri, profile_bytes, written)
        columns["profile_sha256"] = checksum
        columns["profile_signature"] = signer.sign(pipeline, version, profile_uri, checksum)
        columns["profile_hash"] = profile_hash or checksum
    return columns


def _checked_bytes(uri: str, data: object) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"artifact {uri} must be bytes, not {type(data).__name__}")
    return bytes(data)


def _store(root: Location, uri: str, data: bytes, written: list[Location]) -> str:
    """Write ``data`` atomically to ``root/uri``; return ``uri``."""
    path = root / uri
    written.append(path)
    with reaching(root, f"write {uri}"):
        write_file(path, bytes(data))
    return uri


def remove_files(paths: list[Location]) -> None:
    """Remove the files (and their folders once empty) of a failed registration."""
    for path in paths:
        # best effort on object storage: the registration's own error is the one to report
        with contextlib.suppress(FileNotFoundError if is_local(path) else Exception):
            path.unlink()
    for folder in {path.parent for path in paths if is_local(path)}:
        with contextlib.suppress(OSError):  # not empty: something else lives there
            folder.rmdir()
    paths.clear()


@contextlib.contextmanager
def reaching(root: Location, doing: str) -> Iterator[None]:
    """Local errors pass through unchanged; on object storage a missing bucket, refused
    credentials or an unreachable endpoint become one ``ArtifactRootError`` naming the
    setting (a missing *object* in a reachable bucket stays ``FileNotFoundError``)."""
    if is_local(root):
        yield
        return
    try:
        yield
    except ArtifactError:
        raise
    except FileNotFoundError:
        if not _bucket_exists(root):
            raise root_error(root, doing, "the bucket does not exist") from None
        raise
    except Exception as error:  # s3fs/botocore errors do not share one base class
        raise root_error(root, doing, f"{type(error).__name__}: {error}") from None


def root_error(root: Location, doing: str, problem: str) -> ArtifactRootError:
    return ArtifactRootError(
        f"cannot {doing} under the artifact root RETRAIN_ARTIFACT_ROOT={root}: {problem}. "
        "Check that the bucket exists and that the credentials (AWS_ACCESS_KEY_ID / "
        "AWS_SECRET_ACCESS_KEY / AWS_PROFILE, an instance role, AWS_ENDPOINT_URL_S3 for an "
        "S3-compatible server) may read and write it"
    )


def _bucket_exists(root: Location) -> bool:
    bucket = root.path.strip("/").split("/")[0]
    try:
        return bool(root.fs.exists(bucket))
    except Exception:  # an exists() that fails is an unreachable root too
        return False


def read_verified(
    root: Location,
    signer: ArtifactSigner,
    record: tuple[str, int, str, str, str | None],
) -> bytes:
    """The bytes of one artifact, refused unless it lies inside ``root``, exists, has the
    recorded SHA-256 and carries a valid signature. ``record``: pipeline, version, relative
    URI, SHA-256, signature (from the registry row)."""
    pipeline, version, uri, expected, signature = record
    name = f"{pipeline} v{version}"
    path = confined_path(root, uri, name)
    if not signature:
        raise UnsignedArtifactError(
            f"artifact {uri} of {name} has no signature (registered before signing, or the "
            "row was forged); refusing to load it. If you trust the files, sign them with "
            f"`retrain sign-artifacts --pipeline {pipeline} --trust-unsigned`"
        )
    try:
        with reaching(root, f"read {uri} of {name}"):
            data = path.read_bytes()
    except FileNotFoundError:
        raise MissingArtifactError(
            f"artifact {uri} of {name} is missing under {root}; restore it from a backup or "
            "roll back to another version"
        ) from None
    except OSError as error:
        raise ArtifactError(
            f"cannot read artifact {uri} of {name}: {error.strerror or error}"
        ) from None
    actual = sha256(data)
    if actual != expected or not signer.verify(signature, pipeline, version, uri, actual):
        raise CorruptArtifactError(
            f"artifact {uri} of {name} fails its signature check (SHA-256 {actual}, "
            f"recorded {expected}): corrupt, forged, or signed with another key "
            f"({signer.origin}); refusing to load it"
        )
    return data


def confined_path(root: Location, uri: str, name: str) -> Location:
    """``root/uri``, refused when ``uri`` is absolute, a URL or climbs out of ``root``."""
    relative = PurePosixPath(uri)
    if ":" in uri or relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise CorruptArtifactError(
            f"artifact URI {uri!r} of {name} is not a path inside the artifact root {root}; "
            "refusing to load it"
        )
    if not is_local(root):  # object stores have no symlinks: the checks above confine it
        return root / relative.as_posix()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):  # a symlink pointing out of the root
        raise CorruptArtifactError(
            f"artifact {uri} of {name} resolves to {path}, outside the artifact root {root}; "
            "refusing to load it"
        )
    return path
