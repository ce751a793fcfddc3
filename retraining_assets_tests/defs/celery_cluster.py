"""A small Celery cluster for the tests and the benchmark: real ``dagster-celery`` worker
processes on a real broker, and retraining runs launched the way ``dagster job launch`` does
(the instance's run launcher starts the run in its own process, from the code location).

Nothing is shared in memory: the run process and every worker load the code location from the
same environment (``RETRAIN_*``, ``DAGSTER_HOME``) and meet only in the broker, the Dagster
instance (SQLite under a shared folder), the platform database and the artifact folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import sqlalchemy as sa
import yaml

from retraining_assets.cli.common import prepare_dagster_home
from retraining_assets.core.database import platform_engine
from retraining_assets.core.demo import DemoStream
from retraining_assets.core.pipeline import configured_pipelines
from retraining_assets.definitions import build_definitions
from retraining_assets.defs.jobs import monitoring_job_name, retraining_job_name
from retraining_assets.demo.simulation import Simulation
from retraining_assets.settings import load_settings

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
BROKER_URL = os.environ.get("RETRAIN_TEST_CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
STREAM = DemoStream(rows_per_month=600, months=5, end_month=pd.Timestamp("2024-05-01"))
PARTITION = STREAM.partition_key(2)  # three months of data: the training window
JOB = retraining_job_name("demo")
# The instance of the tests: a submitted run starts at once (no daemon to dequeue it).
INSTANCE_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""
STARTUP_SECONDS = 300  # a worker imports the code location (torch, sklearn) on a loaded machine
RUN_SECONDS = 1200  # generous: the run ends by itself; this only stops a hung test
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def environment(home: Path, executor: str, broker: str = BROKER_URL) -> dict[str, str]:
    """What the launcher, the run process and every worker read their settings from."""
    return {
        "RETRAIN_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "RETRAIN_PARTITION": "monthly",
        "RETRAIN_TRAINING_WINDOW": "3M",
        "RETRAIN_DRIFT_WINDOW": "1",
        "RETRAIN_PARTITION_START": STREAM.first_month.strftime("%Y-%m-%d"),
        "RETRAIN_VOLUME_TRIGGER": "1000",
        "RETRAIN_RETRAIN_COOLDOWN_HOURS": "0",
        "RETRAIN_AUTOMATION_RUNNING": "false",
        "RETRAIN_EXECUTOR": executor,
        "RETRAIN_CELERY_BROKER_URL": broker,
        "OMP_NUM_THREADS": "1",
        "GX_ANALYTICS_ENABLED": "false",
    }


def subprocess_env(variables: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("RETRAIN_", "DAGSTER_"))}
    path = f"{BIN}{os.pathsep}{keep.get('PATH', '')}"  # dagster-celery runs `celery` by name
    return {**keep, **variables, "PYTHONPATH": str(ROOT), "PATH": path}


def build_template(home: Path) -> None:
    """The state a retraining run starts from: three months of records, the reference and the
    period's monitoring run, no model yet. SQLite files checkpointed, so the folder copies."""
    variables = environment(home, "multiprocess")
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        settings = load_settings()
        settings.dagster_home.mkdir(parents=True, exist_ok=True)
        (settings.dagster_home / "dagster.yaml").write_text(INSTANCE_YAML)
        prepare_dagster_home(settings)
        engine = platform_engine(settings.platform_database_url)
        STREAM.seed_database(engine)
        pipeline = configured_pipelines(settings)[0]
        with dg.DagsterInstance.get() as instance:
            simulation = Simulation(build_definitions(settings, [pipeline]), pipeline, instance)
            assert simulation.refresh_reference().success
            assert simulation.launch(monitoring_job_name("demo"), PARTITION).success
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def copy_state(template: Path, home: Path) -> Path:
    shutil.copytree(template, home)
    return home


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log: Path

    def hostname(self) -> str:
        return f"{self.name}@{os.uname().nodename}"


@contextmanager
def celery_workers(
    home: Path, variables: dict[str, str], queue: str, names: tuple[str, ...] = ("w1", "w2")
) -> Iterator[list[Worker]]:
    """``dagster-celery worker start`` processes (concurrency 1 each) on ``queue``, until all
    answer a ping; stopped, with their pool children, on exit."""
    config = home / "celery.yaml"
    config.write_text(yaml.safe_dump({"execution": {"config": {"broker": variables[
        "RETRAIN_CELERY_BROKER_URL"]}}}))  # fmt: skip
    workers: list[Worker] = []
    try:
        for name in names:
            log = home / f"worker-{name}.log"
            command = [
                str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                "-n", name, "-y", str(config), "-q", queue,
                # imported before the pool forks: a step starts without loading the code
                "-i", "retraining_assets.definitions", "--", "--concurrency=1",
            ]  # fmt: skip
            with log.open("w") as output:
                process = subprocess.Popen(
                    command, cwd=ROOT, env=subprocess_env(variables), stdout=output,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            workers.append(Worker(name, process, log))
        wait_for_workers(variables["RETRAIN_CELERY_BROKER_URL"], workers)
        yield workers
    finally:
        for worker in workers:
            stop_group(worker.process)


def stop_group(process: subprocess.Popen, grace: float = 60.0) -> None:
    """Stop the process this module started and its children (its own session): SIGTERM, then
    SIGKILL for whatever is left after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _group_alive(process):
            time.sleep(0.2)
        if not _group_alive(process):
            break
    process.wait()


def _group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reap the leader, so only live members keep the group
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for_workers(broker: str, workers: list[Worker]) -> None:
    from celery import Celery

    app = Celery(broker=broker)
    wanted = {worker.hostname() for worker in workers}
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while time.monotonic() < deadline:
            for worker in workers:
                if worker.process.poll() is not None:
                    raise RuntimeError(f"worker {worker.name} exited: {tail(worker.log)}")
            answered = {name for reply in app.control.ping(timeout=1.0) for name in reply}
            if wanted <= answered:
                return
        raise RuntimeError(
            "the Celery workers did not answer: "
            + " | ".join(f"{w.name}: {tail(w.log)}" for w in workers)
        )
    finally:
        app.close()


def tail(path: Path, size: int = 3000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else "(no log)"


def launch(home: Path, variables: dict[str, str], run_config: dict | None = None) -> str:
    """``dagster job launch`` of the retraining job for PARTITION; returns the run id."""
    run_id = str(uuid.uuid4())
    command = [
        str(BIN / "dagster"), "job", "launch", "-w", str(ROOT / "workspace.yaml"), "-j", JOB,
        "--run-id", run_id, "--tags", json.dumps({"dagster/partition": PARTITION}),
        "--config-json", json.dumps(run_config or {}),
    ]  # fmt: skip
    log = home / f"launch-{run_id[:8]}.log"
    with log.open("w") as output:
        done = subprocess.run(
            command, cwd=ROOT, env=subprocess_env(variables), stdout=output,
            stderr=subprocess.STDOUT, timeout=STARTUP_SECONDS, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"dagster job launch failed: {tail(log)}")
    return run_id


def wait_for_run(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRun:
    """Poll the run until it ends (no timing is asserted; the deadline only stops a hang)."""
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status in FINISHED:
            return run
        time.sleep(1.0)
    raise RuntimeError(f"run {run_id} did not end: {events_summary(instance, run_id)}")


def events_summary(instance: dg.DagsterInstance, run_id: str, last: int = 20) -> str:
    entries = instance.all_logs(run_id)[-last:]
    return "\n".join(f"{e.dagster_event_type}: {e.message[:300]}" for e in entries)


@dataclass(frozen=True)
class StepRun:
    """One step of a run, from its event log."""

    key: str
    start: float
    end: float | None
    pid: int | None
    worker: str | None


def steps(instance: dg.DagsterInstance, run_id: str) -> dict[str, StepRun]:
    starts: dict[str, tuple[float, int | None]] = {}
    ends: dict[str, float] = {}
    workers: dict[str, str] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not entry.step_key:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[entry.step_key] = (entry.timestamp, event.pid)
        elif event.event_type in (
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
        ):
            ends[entry.step_key] = entry.timestamp
        elif event.event_type == dg.DagsterEventType.ENGINE_EVENT:
            metadata = event.engine_event_data.metadata if event.engine_event_data else {}
            if "Celery worker" in metadata:
                workers[entry.step_key] = metadata["Celery worker"].value
    return {
        key: StepRun(key, start, ends.get(key), pid, workers.get(key))
        for key, (start, pid) in starts.items()
    }


def overlapping(a: StepRun, b: StepRun) -> bool:
    assert a.end is not None and b.end is not None
    return a.start < b.end and b.start < a.end


def candidate_steps(found: dict[str, StepRun]) -> list[StepRun]:
    return [step for key, step in sorted(found.items()) if "candidate_" in key]


def platform_rows(home: Path, table: sa.Table) -> list[dict]:
    settings = load_settings(home=home)
    engine = platform_engine(settings.platform_database_url)
    try:
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(sa.select(table))]
    finally:
        engine.dispose()
