"""The project's report server on a free loopback port, for tests that follow report links."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from retraining_assets.core.reports import reports_root
from retraining_assets.reports import report_server


@contextmanager
def report_server_thread(home: Path) -> Iterator[str]:
    """The project's report server for ``home`` on a free loopback port; yields its URL."""
    server = report_server(reports_root(home), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def serving_reports(home: Path) -> Iterator[Callable[[str], httpx.Response]]:
    """Serve ``home``'s reports; yield ``get(url)``, which follows a report link's path on
    this server (the link's host is the configured RETRAIN_REPORTS_URL)."""
    with report_server_thread(home) as base:
        yield lambda url: httpx.get(base + urlsplit(url).path)
