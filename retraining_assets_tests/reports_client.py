"""The project's report server on a free loopback port, for tests that follow report links."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx

from retraining_assets.core.reports import reports_root
from retraining_assets.reports import report_server
from retraining_assets.settings import Settings


@contextmanager
def report_server_thread(settings: Settings) -> Iterator[str]:
    """The project's report server for ``settings``' artifact root on a free loopback port;
    yields its URL."""
    server = report_server(reports_root(settings), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def serving_reports(settings: Settings) -> Iterator[Callable[[str], httpx.Response]]:
    """Serve the reports under ``settings``' artifact root; yield ``get(url)``, which follows
    a report link's path on this server (the link's host is the configured
    RETRAIN_REPORTS_URL)."""
    with report_server_thread(settings) as base:
        yield lambda url: httpx.get(base + urlsplit(url).path)
