"""Where the HTML/PNG reports live and where they are served.

Every report is written under ``<artifact root>/reports`` (``RETRAIN_ARTIFACT_ROOT``: a local
folder by default, or an fsspec URL such as ``s3://bucket/prefix``), so a step on any worker or
pod writes it where the report server and every other machine read it. The report server maps
``<artifact root>/reports/<path>`` to ``<reports_url>/reports/<path>``, so the UI and the
messages link to it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from retraining_assets.core.locations import Location, is_local, location, write_file
from retraining_assets.settings import Settings

ROUTE = "reports"


def reports_root(settings: Settings) -> Location:
    """The one folder the report server serves: every HTML/PNG report lives below it."""
    return settings.artifact_path / ROUTE


def relative_report_path(root: Location, path: Location) -> str:
    """``path`` relative to ``root`` as a POSIX path, or a ``ValueError`` naming both."""
    if is_local(root) and is_local(path):
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    else:  # object storage: both are URLs of the same bucket, compared as text
        prefix, text = str(root).rstrip("/") + "/", str(path)
        if text.startswith(prefix) and len(text) > len(prefix):
            return text[len(prefix) :]
    raise ValueError(f"report {path} is not under the report folder {root}")


def report_url(reports_url: str, root: Location, path: Location) -> str:
    """The URL of report ``path`` (a file under the report folder ``root``)."""
    relative = relative_report_path(root, path)
    return f"{reports_url.rstrip('/')}/{ROUTE}/{quote(relative)}"


@contextmanager
def published(folder: Location) -> Iterator[Path]:
    """A local scratch folder to render reports into (matplotlib and the HTML writer write
    local files). When the block ends, each file in it is written to ``folder`` under the
    same name: locally to a temporary file renamed into place, on object storage by one PUT
    each, so a reader never sees half a report. When rendering fails nothing is written."""
    with tempfile.TemporaryDirectory(prefix="retrain-report-") as scratch:
        yield Path(scratch)
        for file in sorted(Path(scratch).iterdir()):
            write_file(folder / file.name, file.read_bytes())


def write_report(destination: str | os.PathLike[str], render: Callable[[Path], object]) -> Location:
    """One report file at ``destination`` (a local path or an fsspec URL such as
    ``s3://bucket/drift.html``), rendered by ``render(local_path)``, e.g. ``report.to_html``."""
    target = location(destination)
    with published(target.parent) as scratch:
        render(scratch / target.name)
    return target
