"""Artifact signatures: an HMAC-SHA256 whose key is never in the platform database.

A SHA-256 stored beside the file it checks proves nothing to someone who can write that row.
The signature binds the file's content to its pipeline, version and place under the artifact
root with a key only the hosts that train and load models hold: ``RETRAIN_ARTIFACT_KEY``, or a
key file created on first use (``<RETRAIN_HOME>/artifact.key``, mode 0600). A row or file
forged without the key fails verification, and it is verified before any byte is loaded.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from retraining_assets.core.registry.records import ArtifactError

KEY_FILE = "artifact.key"
MIN_KEY_BYTES = 32
_DOMAIN = b"retraining_assets artifact signature v1"


class ArtifactKeyError(ArtifactError):
    """The signing key cannot be read or is unsafe; the message names where it comes from."""


@dataclass(frozen=True)
class ArtifactSigner:
    """Signs and verifies artifacts with one secret key (``origin`` says where it came from)."""

    key: bytes = field(repr=False)
    origin: str

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise ArtifactKeyError(
                f"the artifact key from {self.origin} has {len(self.key)} bytes; use at least "
                f"{MIN_KEY_BYTES} (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
            )

    @classmethod
    def from_secret(cls, secret: str, origin: str = "RETRAIN_ARTIFACT_KEY") -> ArtifactSigner:
        return cls(secret.strip().encode(), origin)

    @classmethod
    def from_file(cls, path: Path) -> ArtifactSigner:
        """The key in ``path``, created (random, mode 0600) when the file does not exist yet.
        A key file that others can read is refused, as ssh refuses such a private key."""
        path = Path(path)
        try:
            _create_key_file(path)
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ArtifactKeyError(
                    f"artifact key file {path} is readable by others (mode {mode & 0o777:o}); "
                    f"run `chmod 600 {path}`"
                )
            return cls(path.read_bytes().strip(), str(path))
        except OSError as error:
            raise ArtifactKeyError(
                f"cannot read or create the artifact key file {path}: {error.strerror or error}"
                " (set RETRAIN_ARTIFACT_KEY or make RETRAIN_HOME writable)"
            ) from None

    def sign(self, pipeline: str, version: int, relative_uri: str, sha256: str) -> str:
        """The hex signature of a file with content hash ``sha256`` stored at ``relative_uri``
        for ``pipeline`` v``version``."""
        parts = (pipeline, str(version), relative_uri, sha256)
        message = b"\0".join((_DOMAIN, *(part.encode() for part in parts)))
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def verify(
        self, signature: str | None, pipeline: str, version: int, relative_uri: str, sha256: str
    ) -> bool:
        if not signature:
            return False
        expected = self.sign(pipeline, version, relative_uri, sha256)
        return hmac.compare_digest(expected, signature)


def _create_key_file(path: Path) -> None:
    """Write a new random key with O_EXCL (two first users cannot write two keys)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return
    with os.fdopen(handle, "w") as stream:
        stream.write(secrets.token_hex(32) + "\n")
        stream.flush()
        os.fsync(stream.fileno())
