"""Where artifacts live: a local folder (plain ``pathlib``, exactly as before) or an fsspec URL
such as ``s3://bucket/prefix`` (``universal_pathlib``, which Dagster already depends on)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import fsspec
from upath import UPath

from retraining_assets.core.files import write_atomically

__all__ = [
    "Location",
    "folder_or_url",
    "is_local",
    "location",
    "object_store_url",
    "unwritable_folder",
    "write_file",
]

Location = Path | UPath


def location(value: str | os.PathLike[str]) -> Location:
    """A local folder (``file://`` URLs included) as a resolved ``Path``, anything else with a
    scheme as a ``UPath`` whose filesystem reads its credentials the usual way (environment,
    config files, instance roles)."""
    if isinstance(value, UPath) and not isinstance(value, Path):
        return value
    text = os.fspath(value)
    local = _local_path(text)
    return local.resolve() if local is not None else UPath(text)


def _local_path(text: str) -> Path | None:
    """A plain path or a ``file://`` URL as a ``Path``; None for any other URL."""
    if "://" not in text:
        return Path(text)
    url = urlsplit(text)
    if url.scheme == "file" and url.netloc in ("", "localhost"):
        return Path(unquote(url.path))
    return None


def is_local(path: Location) -> bool:
    return isinstance(path, Path)


def write_file(path: Location, data: bytes) -> None:
    """Locally: temporary file, fsync, rename (``write_atomically``). On object storage one PUT,
    which is atomic already: readers see the old object or the whole new one."""
    if is_local(path):
        write_atomically(path, data)
    else:
        path.write_bytes(data)


def object_store_url(value: str, scheme: str) -> str:
    """``value`` when an installed fsspec filesystem serves ``scheme``; else a message saying
    which package (or extra) provides it."""
    try:
        fsspec.get_filesystem_class(scheme)
    except ValueError:
        raise ValueError(f"{value}: no fsspec filesystem serves {scheme}://") from None
    except ImportError as error:
        extra = " (pip install 'retraining_assets[s3]')" if scheme in ("s3", "s3a") else ""
        raise ValueError(f"{value}: {scheme}:// needs a package: {error}{extra}") from None
    return value.rstrip("/")


def folder_or_url(value: str) -> Path | str:
    """A setting's folder: a path or ``file://`` URL as a ``Path``; another URL (s3://bucket/
    prefix, gs://, az://) stays a URL, refused by name when no fsspec filesystem serves it."""
    local = _local_path(value)
    return local if local is not None else object_store_url(value, urlsplit(value).scheme)


def unwritable_folder(folder: Path) -> str | None:
    """Why ``folder`` cannot be created and written, or None when it can; creates nothing."""
    existing = folder.absolute()
    try:
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            return f"{existing} is a file, not a folder"
    except OSError as error:
        return f"{existing}: {error.strerror or error}"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None
