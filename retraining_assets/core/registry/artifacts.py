"""Artifact files: written atomically under ``<root>/<pipeline>/v<version>/``, each with a
SHA-256 recorded in the registry and checked again on every load."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from retraining_assets.core.files import write_atomically
from retraining_assets.core.registry.records import (
    ArtifactError,
    CorruptArtifactError,
    MissingArtifactError,
)

MODEL_FILE = "model.bin"
PROFILE_FILE = "profile.bin"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_version_files(
    folder: Path,
    model_bytes: bytes,
    profile_bytes: bytes | None,
    profile_hash: str | None,
    written: list[Path],
) -> dict[str, Any]:
    """Write ``folder/model.bin`` (and ``profile.bin``); return their registry columns. Every
    path is appended to ``written`` before it is written, so a failure can remove them all."""
    columns: dict[str, Any] = {
        "artifact_uri": _store(folder / MODEL_FILE, model_bytes, written),
        "artifact_sha256": sha256(model_bytes),
        "artifact_size": len(model_bytes),
        "profile_uri": None,
        "profile_sha256": None,
        "profile_hash": None,
    }
    if profile_bytes is not None:
        checksum = sha256(profile_bytes)
        columns["profile_uri"] = _store(folder / PROFILE_FILE, profile_bytes, written)
        columns["profile_sha256"] = checksum
        columns["profile_hash"] = profile_hash or checksum
    return columns


def _store(path: Path, data: bytes, written: list[Path]) -> str:
    """Write ``data`` atomically to ``path``; its ``file://`` URI."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"artifact {path.name} must be bytes, not {type(data).__name__}")
    written.append(path)
    write_atomically(path, bytes(data))
    return path.as_uri()


def remove_files(paths: list[Path]) -> None:
    """Remove the files (and their folders once empty) of a failed registration."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    for folder in {path.parent for path in paths}:
        with contextlib.suppress(OSError):  # not empty: something else lives there
            folder.rmdir()
    paths.clear()


def read_verified(uri: str, expected: str, pipeline: str, version: int) -> bytes:
    """The file's bytes, refused unless their SHA-256 is ``expected``."""
    path = path_from_uri(uri)
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
    actual = sha256(data)
    if actual != expected:
        raise CorruptArtifactError(
            f"artifact {path} of {pipeline} v{version} is corrupt: SHA-256 {actual}, "
            f"expected {expected}; refusing to load it"
        )
    return data


def path_from_uri(uri: str) -> Path:
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise ArtifactError(f"unsupported artifact URI {uri!r}: only file:// is supported")
    return Path(unquote(parts.path))
