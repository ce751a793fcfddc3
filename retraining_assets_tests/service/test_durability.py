"""A 200 means the prediction is in the log: SIGKILL of ``retrain serve`` under load loses no
answered prediction or outcome, and a database that stops taking rows makes the service
``degraded``, not silent, while every answer waits on disk."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import sqlalchemy as sa

from retraining_assets.core import schema
from retraining_assets.core.demo import SPEC
from retraining_assets.core.prediction_log import count_rows, entities_of
from retraining_assets.service.app import create_app
from retraining_assets.service.process import serve_process
from retraining_assets.service.server import STARTUP_TIMEOUT
from retraining_assets.settings import load_settings
from retraining_assets_tests.service.conftest import (
    Trained,
    columns_of,
    deploy,
    features_of,
    serving,
)

DEADLINE = 120.0  # a failsafe for conditions that must come true, never a measurement


def until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds (failing after ``DEADLINE`` with ``what``)."""
    give_up = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < give_up, f"never happened: {what}"
        time.sleep(0.02)


def test_sigkill_under_load_loses_no_answered_prediction_or_outcome(
    tmp_path: Path, trained: Trained
) -> None:
    home = tmp_path / ".retrain"
    deployed = deploy(load_settings(home=home, serve_refresh_seconds=0), trained)
    deployed.start_rollout(2, share=0.5)
    env = {name: value for name, value in os.environ.items() if not name.startswith("RETRAIN_")}
    env |= {
        "RETRAIN_HOME": str(home),
        "RETRAIN_SERVE_REFRESH_SECONDS": "0",
        "RETRAIN_LOG_FLUSH_SECONDS": "3600",  # nothing reaches the database before the kill
        "RETRAIN_LOG_BATCH_SIZE": "1000000",
        "OMP_NUM_THREADS": "1",
    }
    frame, total, kill_after = trained.frame, 600, 300
    answered: list[str] = []
    lock, enough = threading.Lock(), threading.Event()
    with serve_process(env, STARTUP_TIMEOUT) as served:
        with httpx.Client(base_url=served.url, timeout=60) as client:
            body = {
                "entity_ids": [f"b-{i}" for i in range(50)],
                "features": columns_of(frame, range(50)),
            }
            batch = client.post("/predict/batch", json=body).json()["prediction_ids"]
            outcomes = [str(frame[SPEC.target].iloc[i]) for i in range(50)]
            feedback = {"prediction_ids": batch, "outcomes": outcomes}
            assert client.post("/feedback/batch", json=feedback).status_code == 202
        answered.extend(batch)

        def one(i: int) -> None:
            body = {"entity_id": f"e-{i}", "features": features_of(frame, i % 200)}
            try:
                with httpx.Client(base_url=served.url, timeout=60) as client:
                    response = client.post("/predict", json=body)
            except httpx.TransportError:
                return  # sent after (or cut by) the kill: never answered
            if response.status_code == 200:
                with lock:
                    answered.append(response.json()["prediction_id"])
                    if len(answered) >= kill_after + len(batch):
                        enough.set()

        with ThreadPoolExecutor(8) as pool:
            for i in range(total):
                pool.submit(one, i)
            assert enough.wait(DEADLINE), "the service answered too few requests"
            os.kill(served.pid, signal.SIGKILL)
    assert served.returncode == -signal.SIGKILL
    with lock:
        answered_ids = list(answered)
    assert len(answered_ids) >= kill_after + len(batch)
    engine = deployed.registry.engine
    assert count_rows(engine, "demo") == {"predictions": 0, "outcomes": 0}  # only on disk

    with serve_process(env, STARTUP_TIMEOUT) as served:  # replays the spool at start
        health = httpx.get(f"{served.url}/health").json()
        assert health["log"]["backlog"] >= len(answered_ids) + len(batch)
    assert served.returncode == -signal.SIGTERM  # a graceful stop writes the log out
    logged = entities_of(engine, "demo", answered_ids)
    missing = [i for i in answered_ids if i not in logged]
    assert missing == [], f"{len(missing)} of {len(answered_ids)} answered predictions lost"
    assert count_rows(engine, "demo")["outcomes"] == len(batch)
    assert list((home / "spool" / "demo").glob("prediction-log-*.jsonl")) == []


def test_a_database_that_stops_taking_rows_makes_the_service_degraded(
    tmp_path: Path, trained: Trained
) -> None:
    settings = load_settings(
        home=tmp_path / ".retrain", serve_refresh_seconds=0, log_flush_seconds=0.02
    )
    deployed = deploy(settings, trained)
    engine, frame = deployed.registry.engine, trained.frame
    with serving(create_app(deployed.pipeline)) as client:

        def health() -> dict:
            return client.get("/health").json()

        body = {"entity_id": "first", "features": features_of(frame, 0)}
        assert client.post("/predict", json=body).status_code == 200
        until(lambda: health()["log"]["backlog"] == 0, "the first prediction is written")
        assert health()["status"] == "ok"
        with engine.begin() as connection:  # the table goes away under the running service
            connection.execute(sa.text("DROP TABLE predictions"))
        answers = [
            client.post("/predict", json={"entity_id": f"e-{i}", "features": features_of(frame, i)})
            for i in range(20)
        ]
        assert [answer.status_code for answer in answers] == [200] * 20  # each on disk
        until(lambda: health()["status"] == "degraded", "health reports the failing log")
        degraded = client.get("/health")
        assert degraded.status_code == 200  # still serving: answers are durable
        log = degraded.json()["log"]
        assert log["state"] == "retrying" and log["backlog"] == 20
        assert "no such table: predictions" in log["last_error"]
        assert "20 rows wait on disk" in degraded.json()["reason"]
        schema.predictions.create(engine)  # the database is repaired
        until(lambda: health()["log"]["backlog"] == 0, "the waiting rows are written")
        assert health()["status"] == "ok"
    ids = [answer.json()["prediction_id"] for answer in answers]
    assert len(entities_of(engine, "demo", ids)) == 20
