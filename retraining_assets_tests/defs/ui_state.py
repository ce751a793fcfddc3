"""A small demo state and a real ``dagster-webserver`` over it, for the UI tests.

The state is what ``retrain demo`` leaves behind, made the same way (``Simulation``): three
periods of the demo stream, the first model trained and promoted, then the backtest a person
launches on demand (``demo_backtest_job``). The webserver loads the code
location as ``make dev`` does (``workspace.yaml``, from the instance folder) in a subprocess
with the same environment, so it holds exactly the definitions the runs were created from.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import httpx
import pandas as pd
import yaml

from retraining_assets.cli.common import prepare_dagster_home
from retraining_assets.core.database import platform_engine
from retraining_assets.core.demo import DemoStream
from retraining_assets.core.pipeline import configured_pipelines
from retraining_assets.core.validation import CHECKS
from retraining_assets.definitions import build_definitions
from retraining_assets.defs.jobs import backtest_job_name
from retraining_assets.demo.launch import REPOSITORY
from retraining_assets.demo.simulation import Simulation
from retraining_assets.settings import load_settings

ROOT = Path(__file__).parents[2]
# the code location as the webserver names it (make dev, dagster dev and dg dev agree)
LOCATION = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"][0]["python_module"][
    "location_name"
]
STREAM = DemoStream(rows_per_month=600, months=5, end_month=pd.Timestamp("2024-05-01"))
PERIODS = 3
STARTUP_SECONDS = 240  # the webserver loads the code location (torch, sklearn) on 2 cores


@dataclass
class UiState:
    url: str
    instance: dg.DagsterInstance
    partitions: list[str]
    retraining_runs: list[str]
    settings_home: Path
    reports_url: str
    reference_run: str
    backtest_run: str

    @property
    def data_checks(self) -> list[str]:
        return [check.name for check in CHECKS]


def graphql(url: str, query: str, **variables: object) -> dict:
    """One GraphQL query of the webserver; its errors fail the test with their message."""
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables})
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def environment(home: Path, reports_url: str) -> dict[str, str]:
    """The variables both this process and the webserver read their settings from."""
    return {
        "RETRAIN_REPORTS_URL": reports_url,
        "RETRAIN_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "RETRAIN_RETRAIN_COOLDOWN_HOURS": "0",
        "RETRAIN_PARTITION_START": STREAM.first_month.strftime("%Y-%m-%d"),
        # a few monthly periods keep the state cheap (the demo's own default is weekly)
        "RETRAIN_PARTITION": "monthly",
        "RETRAIN_VOLUME_TRIGGER": "1000",
        # the webserver only shows: no daemon, and nothing may start runs behind the test
        "RETRAIN_AUTOMATION_RUNNING": "false",
    }


@dataclass
class DemoRuns:
    """The runs the small demo made, by what the tests look for."""

    partitions: list[str]
    retraining: list[str]
    reference: str
    backtest: str


def build_state(home: Path) -> tuple[Simulation, DemoRuns]:
    settings = load_settings()
    prepare_dagster_home(settings)
    STREAM.seed_database(platform_engine(settings.platform_database_url))
    pipeline = configured_pipelines(settings)[0]
    simulation = Simulation(
        build_definitions(settings, [pipeline]), pipeline, dg.DagsterInstance.get()
    )
    reference = simulation.refresh_reference()
    partitions = [STREAM.partition_key(offset) for offset in range(PERIODS)]
    outcomes = [simulation.period(partition) for partition in partitions]
    retraining = [o.retraining.run_id for o in outcomes if o.retraining is not None]
    assert all(o.monitoring.success for o in outcomes) and retraining
    backtest = simulation.launch(backtest_job_name(pipeline.name))
    assert reference.success and backtest.success
    runs = DemoRuns(partitions, retraining, reference.run_id, backtest.run_id)
    return simulation, runs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _default_signals() -> None:
    # a parent may have ignored SIGTERM/SIGINT; the webserver must stop when asked
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def webserver(home: Path, log: Path, reports_url: str) -> Iterator[str]:
    """``dagster-webserver`` on a free loopback port, until the code location has loaded."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port),
        "-w", str(ROOT / "workspace.yaml"),
    ]  # fmt: skip
    env = {**os.environ, **environment(home, reports_url), "PYTHONPATH": str(ROOT)}
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=home / "dagster", env=env, stdout=output, stderr=subprocess.STDOUT,
            preexec_fn=_default_signals,
        )  # fmt: skip
        try:
            _wait_until_loaded(url, process, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


def _wait_until_loaded(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited: {log.read_text()[-3000:]}")
        try:
            entries = graphql(url, LOCATIONS)["workspaceOrError"]["locationEntries"]
        except httpx.TransportError:
            entries = []
        if any(e["name"] == LOCATION and e["loadStatus"] == "LOADED" for e in entries):
            return
        process_wait(process)
    raise RuntimeError(f"the code location did not load: {log.read_text()[-3000:]}")


def process_wait(process: subprocess.Popen) -> None:
    """Give the starting webserver a moment, returning early if it exits."""
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=0.5)


__all__ = [
    "LOCATION",
    "REPOSITORY",
    "UiState",
    "build_state",
    "environment",
    "graphql",
    "webserver",
]
