"""The retraining job on two Celery workers against the multiprocess executor (the baseline),
on the same state (three demo months, 600 records each), each launched through the instance
(``dagster job launch``) and timed from the run's own RUN_START to RUN_SUCCESS events.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/celery_benchmark.py

Target (issue 17): Celery within 1.2x of multiprocess on one machine, the candidate steps on
both workers with overlapping intervals. Needs the broker (RETRAIN_TEST_CELERY_BROKER_URL,
default RabbitMQ on 127.0.0.1:5672)."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import dagster as dg

from retraining_assets.defs.executors import check_broker
from retraining_assets_tests.defs.celery_cluster import (
    BROKER_URL,
    build_template,
    candidate_steps,
    celery_workers,
    copy_state,
    environment,
    launch,
    overlapping,
    steps,
    wait_for_run,
)


def run_seconds(instance: dg.DagsterInstance, run_id: str) -> float:
    stamps = {
        entry.dagster_event_type: entry.timestamp
        for entry in instance.all_logs(run_id)
        if entry.dagster_event_type
        in (dg.DagsterEventType.RUN_START, dg.DagsterEventType.RUN_SUCCESS)
    }
    return stamps[dg.DagsterEventType.RUN_SUCCESS] - stamps[dg.DagsterEventType.RUN_START]


def timed(home: Path, variables: dict[str, str], run_config: dict | None = None):
    with dg.DagsterInstance.from_config(variables["DAGSTER_HOME"]) as instance:
        run_id = launch(home, variables, run_config)
        run = wait_for_run(instance, run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
        return run_seconds(instance, run_id), steps(instance, run_id)


def main() -> None:
    check_broker(BROKER_URL)
    root = Path(tempfile.mkdtemp(prefix="celery-benchmark-"))
    template = root / "template" / ".retrain"
    build_template(template)
    print(f"load: {os.getloadavg()[0]:.2f} (1 min)")

    local_home = copy_state(template, root / "multiprocess" / ".retrain")
    local, _ = timed(local_home, environment(local_home, "multiprocess"))

    queue = f"retrain-bench-{uuid.uuid4().hex[:8]}"
    celery_home = copy_state(template, root / "celery" / ".retrain")
    variables = environment(celery_home, "celery")
    config = {"execution": {"config": {"config_source": {"task_default_queue": queue}}}}
    with celery_workers(celery_home, variables, queue):
        celery, found = timed(celery_home, variables, config)
    candidates = candidate_steps(found)
    overlap = max(
        min(a.end, b.end) - max(a.start, b.start)
        for a in candidates
        for b in candidates
        if a.worker != b.worker and overlapping(a, b)
    )
    print(f"multiprocess executor: {local:.1f} s (baseline)")
    print(f"celery, 2 workers:     {celery:.1f} s")
    print(f"ratio celery/multiprocess: {celery / local:.2f} (target <= 1.2)")
    print(f"workers used: {sorted({step.worker for step in candidates})}")
    print(f"longest overlap of two candidate steps on different workers: {overlap:.1f} s")
    print(f"load: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
