"""Where a report file is served: the report server maps ``<home>/reports/<path>`` to
``<reports_url>/reports/<path>``, so the UI and the messages can link to it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

ROUTE = "reports"


def reports_root(home: Path) -> Path:
    """The one folder the report server serves: every HTML/PNG report lives below it."""
    return home.resolve() / ROUTE


def report_url(reports_url: str, home: Path, path: Path) -> str:
    """The URL of report ``path`` (a file under ``reports_root(home)``)."""
    root = reports_root(home)
    try:
        relative = path.resolve().relative_to(root)
    except ValueError:
        raise ValueError(f"report {path} is not under the report folder {root}") from None
    return f"{reports_url.rstrip('/')}/{ROUTE}/{quote(relative.as_posix())}"
