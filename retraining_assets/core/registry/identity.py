"""Who acts and with what code: the actor of a change, the OS user, and the package version
plus git commit."""

from __future__ import annotations

import contextlib
import getpass
import os
import subprocess
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path


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


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: the claimed user and the identity that really ran it."""

    by: str
    actual_user: str
