"""The report server: ``python -m retraining_assets.reports`` serves the reports under the
artifact root (``RETRAIN_ARTIFACT_ROOT/reports``, by default ``RETRAIN_HOME/artifacts/reports``;
a local folder or object storage such as ``s3://bucket/prefix``) read-only at
``RETRAIN_REPORTS_URL`` (``make dev`` starts it next to the Dagster UI), so the drift reports
and rollout plots linked from asset metadata open in one click, whichever worker wrote them.

A standalone server rather than a route of ``retrain serve``: the prediction service runs only
where models are served, the reports must open wherever the UI does. GET and HEAD only, no
directory listings, nothing outside the report folder.
"""

from __future__ import annotations

import argparse
import mimetypes
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from retraining_assets.core.locations import Location, is_local
from retraining_assets.core.reports import ROUTE, reports_root
from retraining_assets.settings import load_settings

PREFIX = f"/{ROUTE}/"


class ReportHandler(BaseHTTPRequestHandler):
    """Files below the report folder at ``/reports/...``, read through the artifact root's
    filesystem (a local folder or object storage); anything else is 404."""

    root: Location  # set by ``report_server``

    def do_GET(self) -> None:
        self._send(body=True)

    def do_HEAD(self) -> None:
        self._send(body=False)

    def _send(self, body: bool) -> None:
        found = self._report()
        if found is None:
            self.send_error(HTTPStatus.NOT_FOUND, "not a report")
            return
        name, data = found
        self.send_response(HTTPStatus.OK)
        self.send_header(
            "Content-Type", mimetypes.guess_type(name)[0] or "application/octet-stream"
        )
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _report(self) -> tuple[str, bytes] | None:
        path = unquote(urlsplit(self.path).path)
        if not path.startswith(PREFIX):
            return None
        parts = path.removeprefix(PREFIX).split("/")
        # no directories, no way out of the report folder (``..`` encoded or not)
        if any(part in ("", ".", "..") or "\\" in part for part in parts):
            return None
        file = self.root.joinpath(*parts)
        try:
            return (parts[-1], file.read_bytes()) if file.is_file() else None
        except OSError:  # vanished, or the object store refused: not servable
            return None

    def log_message(self, format: str, *args: object) -> None:
        pass  # the UI's clicks are not worth a terminal line each


def report_server(root: Location, host: str, port: int) -> ThreadingHTTPServer:
    if is_local(root):
        root.mkdir(parents=True, exist_ok=True)
    handler = type("RootedReportHandler", (ReportHandler,), {"root": root})
    return ThreadingHTTPServer((host, port), handler)


def main() -> None:
    settings = load_settings()
    base = urlsplit(settings.reports_url)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=base.hostname or "127.0.0.1")
    parser.add_argument("--port", type=int, default=base.port or 3001)
    options = parser.parse_args()
    root = reports_root(settings)
    server = report_server(root, options.host, options.port)
    print(f"Serving {root} at http://{options.host}:{options.port}{PREFIX}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
