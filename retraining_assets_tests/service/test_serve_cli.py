"""``retrain serve`` as a real process: SIGTERM stops it gracefully and no prediction is lost,
across a restart."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from click.testing import CliRunner

from retraining_assets.cli import main
from retraining_assets.core.prediction_log import count_rows
from retraining_assets.service.process import serve_process
from retraining_assets.service.server import STARTUP_TIMEOUT
from retraining_assets.settings import load_settings
from retraining_assets_tests.service.conftest import (
    Trained,
    columns_of,
    deploy,
    features_of,
)


@contextmanager
def retrain_serve(env: dict[str, str]) -> Iterator[str]:
    """``retrain serve --port 0`` until the block ends, then SIGTERM; its URL once it listens."""
    with serve_process(env, STARTUP_TIMEOUT) as served:
        yield served.url
    # uvicorn re-raises the signal once its graceful shutdown is done: the parent sees it
    assert served.returncode == -signal.SIGTERM, "".join(served.output)
    assert "prediction log closed" in "".join(served.output)


def _send(url: str, trained: Trained, prefix: str, n: int) -> None:
    """``n`` predictions: single rows, and the last ten as one batch request."""
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(n - 10):
            body = {"entity_id": f"{prefix}-{i}", "features": features_of(trained.frame, i)}
            assert client.post("/predict", json=body).status_code == 200
        ids = [f"{prefix}-batch-{i}" for i in range(10)]
        body = {"entity_ids": ids, "features": columns_of(trained.frame, range(10))}
        assert client.post("/predict/batch", json=body).status_code == 200
        health = client.get("/health").json()
    # nothing written yet (the log waits an hour): what the count finds, close() wrote
    assert health["log"]["backlog"] == n and health["log"]["written"]["predictions"] == 0


def test_sigterm_loses_no_prediction_across_a_restart(tmp_path: Path, trained: Trained) -> None:
    home = tmp_path / ".retrain"
    settings = load_settings(home=home, serve_refresh_seconds=0)
    deployed = deploy(settings, trained)
    deployed.start_rollout(2, share=0.5)
    env = {name: value for name, value in os.environ.items() if not name.startswith("RETRAIN_")}
    env |= {
        "RETRAIN_HOME": str(home),
        "RETRAIN_SERVE_REFRESH_SECONDS": "0",
        "RETRAIN_LOG_FLUSH_SECONDS": "3600",
        "RETRAIN_LOG_BATCH_SIZE": "100000",
        "OMP_NUM_THREADS": "1",
    }
    engine = deployed.registry.engine
    with retrain_serve(env) as url:
        _send(url, trained, "first", 40)
        assert count_rows(engine, "demo")["predictions"] == 0
    assert count_rows(engine, "demo")["predictions"] == 40
    with retrain_serve(env) as url:
        _send(url, trained, "second", 25)
    assert count_rows(engine, "demo")["predictions"] == 65


def test_serve_is_a_retrain_command() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.output and "--pipeline" in result.output
