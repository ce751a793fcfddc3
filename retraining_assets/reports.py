"""The report server: ``python -m retraining_assets.reports`` serves ``RETRAIN_HOME/reports``
read-only at ``RETRAIN_REPORTS_URL`` (``make dev`` starts it next to the Dagster UI), so the
drift reports and rollout plots linked from asset metadata open in one click.

A standalone server rather than a route of ``retrain serve``: the prediction service runs only
where models are served, the reports must open wherever the UI does. GET and HEAD only, no
directory listings, nothing outside the report folder (the standard library's path
translation drops ``..``).
"""

from __future__ import annotations

import argparse
import functools
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from retraining_assets.core.reports import ROUTE, reports_root
from retraining_assets.settings import load_settings

PREFIX = f"/{ROUTE}/"


class ReportHandler(SimpleHTTPRequestHandler):
    """Files below the report folder at ``/reports/...``; anything else is 404."""

    def send_head(self):
        path = urlsplit(self.path).path
        if not path.startswith(PREFIX) or path.endswith("/"):
            self.send_error(HTTPStatus.NOT_FOUND, "not a report")
            return None
        self.path = self.path.replace(PREFIX, "/", 1)
        return super().send_head()

    def list_directory(self, path):
        self.send_error(HTTPStatus.NOT_FOUND, "not a report")
        return None

    def log_message(self, format: str, *args: object) -> None:
        pass  # the UI's clicks are not worth a terminal line each


def report_server(root: Path, host: str, port: int) -> ThreadingHTTPServer:
    root.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(ReportHandler, directory=str(root))
    return ThreadingHTTPServer((host, port), handler)


def main() -> None:
    settings = load_settings()
    base = urlsplit(settings.reports_url)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=base.hostname or "127.0.0.1")
    parser.add_argument("--port", type=int, default=base.port or 3001)
    options = parser.parse_args()
    root = reports_root(settings.home)
    server = report_server(root, options.host, options.port)
    print(f"Serving {root} at http://{options.host}:{options.port}{PREFIX}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
