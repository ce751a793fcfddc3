"""Local file writes that a crash cannot leave half-done."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["is_zip", "write_atomically"]

ZIP_MAGIC = b"PK\x03\x04"  # the local file header every zip starts with


def write_atomically(path: Path, data: bytes) -> None:
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


def is_zip(data: bytes) -> bool:
    """Whether ``data`` starts like a zip file (model files do; legacy pickles do not)."""
    return bytes(data[:4]) == ZIP_MAGIC
