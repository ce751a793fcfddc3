"""Serve an application in this process: uvicorn on a loopback port in a background thread.

The demo's traffic simulation (``local_service``) and the service tests use it; ``retrain
serve`` runs uvicorn in the foreground instead. The OS picks the port (bound before uvicorn
starts, so there is no race for it), and ``__enter__`` returns once the lifespan startup has
finished.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from fastapi import FastAPI

from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.prediction_log import PredictionLog
from retraining_assets.service.app import FLUSH_TIMEOUT_SECONDS, create_app
from retraining_assets.service.traffic import TrafficReplay

STARTUP_TIMEOUT = 60.0  # a deadline for a start that fails, never a synchronisation
REQUEST_TIMEOUT = 300.0  # a 100k-row batch on a slow machine, never a synchronisation


class LiveServer:
    """uvicorn serving ``app`` on ``host`` at a port chosen by the OS, in a background thread."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.url = f"http://{host}:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        ready = self.ready = threading.Event()

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=sockets)
                ready.set()

        self.server = Server(config)
        self.thread = threading.Thread(target=self._run, name="prediction-service", daemon=True)

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.ready.set()  # a failed startup must not leave the caller waiting

    def __enter__(self) -> LiveServer:
        self.thread.start()
        if not self.ready.wait(STARTUP_TIMEOUT) or not self.server.started:
            self.stop()
            raise RuntimeError("the prediction service did not start")
        return self

    def stop(self) -> None:
        """A graceful stop, as on SIGTERM: requests in flight finish, then the lifespan ends
        (the prediction log is written out)."""
        self.server.should_exit = True
        self.thread.join()
        self.sock.close()

    def __exit__(self, *_: object) -> None:
        self.stop()


@dataclass(frozen=True)
class LocalService:
    """The prediction service of a pipeline running in this process, and a client replaying
    traffic to it over real HTTP."""

    url: str
    replay: TrafficReplay
    log: PredictionLog

    def flush(self) -> None:
        """Wait until every prediction and outcome answered so far is in the database (what
        the rollout sensor counts); a real deployment lets the next sensor tick see them."""
        self.log.flush(FLUSH_TIMEOUT_SECONDS)


@contextmanager
def local_service(pipeline: Pipeline) -> Iterator[LocalService]:
    """``pipeline``'s prediction service on a loopback port until the block ends; then a
    graceful stop that writes the whole log."""
    app = create_app(pipeline)
    with (
        LiveServer(app) as server,
        httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as client,
    ):
        yield LocalService(server.url, TrafficReplay(client, pipeline.spec), app.state.service.log)
