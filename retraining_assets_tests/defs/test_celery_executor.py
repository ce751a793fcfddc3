"""The retraining job on Dagster's Celery executor, for real: two ``dagster-celery`` worker
processes on the broker this machine runs (RabbitMQ, or Redis via
RETRAIN_TEST_CELERY_BROKER_URL), runs launched through the instance's run launcher
(``dagster job launch``), and the outcome compared with a multiprocess run on the same data.
Skips when no broker answers (fails under CI=true)."""

from __future__ import annotations

import os
import signal
import uuid
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from retraining_assets.core.schema import aliases, audit_log, model_versions, notification_outbox
from retraining_assets.defs.executors import BrokerUnavailableError, check_broker
from retraining_assets.defs.notifications import (
    RESOURCE_KEY,
    RUN_FAILURE_SENSOR,
    NotifierResource,
)
from retraining_assets_tests.conftest import unavailable
from retraining_assets_tests.defs.celery_cluster import (
    BROKER_URL,
    build_template,
    candidate_steps,
    celery_workers,
    copy_state,
    environment,
    launch,
    overlapping,
    platform_rows,
    steps,
    tail,
    wait_for_run,
)
from retraining_assets_tests.peers import SmtpPeer

HOW_TO_RUN = (
    "start RabbitMQ on 127.0.0.1:5672 (guest/guest) or Redis and set "
    "RETRAIN_TEST_CELERY_BROKER_URL=redis://127.0.0.1:6379/0"
)


@pytest.fixture(scope="module")
def broker() -> str:
    try:
        check_broker(BROKER_URL)
    except BrokerUnavailableError as error:
        unavailable(f"{error}: {HOW_TO_RUN}")
    return BROKER_URL


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("celery-template") / ".retrain"
    build_template(home)
    return home


def queue_config(queue: str) -> dict:
    """Steps go to this test's own queue: no leftover or foreign worker takes them."""
    return {"execution": {"config": {"config_source": {"task_default_queue": queue}}}}


# The multiprocess run's steps fork from a forkserver that imported the code location once,
# as the workers' pool children fork from a worker that did (``-i``): a spawned step would
# spend ~12 s importing torch and sklearn again, most of this test's time on 2 cores.
# Named explicitly: with the default preload the steps still took ~10 s each to start.
FORKSERVER = {
    "execution": {
        "config": {
            "multiprocess": {
                "start_method": {
                    "forkserver": {"preload_modules": ["retraining_assets.definitions"]}
                }
            }
        }
    }
}


def launched_run(home: Path, variables: dict[str, str], run_config: dict | None = None):
    with dg.DagsterInstance.from_config(variables["DAGSTER_HOME"]) as instance:
        run_id = launch(home, variables, run_config)
        run = wait_for_run(instance, run_id)
        return run, steps(instance, run_id), instance.all_logs(run_id)


def untimed(params: dict) -> dict:
    """The parameters without the wall time of the fit (the only thing a worker may change)."""
    return {key: value for key, value in params.items() if key != "training_seconds"}


def files(folder: Path) -> set[Path]:
    return {path.relative_to(folder) for path in folder.rglob("*") if path.is_file()}


def outcome(home: Path) -> dict:
    """The registry and outbox after a run, version numbers replaced by the family (the order
    in which parallel steps register decides the numbers, not the content)."""
    versions = platform_rows(home, model_versions)
    family = {row["version"]: row["family"] for row in versions}
    return {
        "versions": sorted(
            # not the file's hash: the model file records its version number and fit time
            (
                row["family"],
                row["status"],
                row["metrics"],
                untimed(row["params"]),
                row["data_fingerprint"],
            )
            for row in versions
        ),
        "aliases": sorted(
            (row["alias"], family[row["version"]]) for row in platform_rows(home, aliases)
        ),
        "audit": sorted(
            (row["action"], family.get(row["version"]), row["claimed_by"])
            for row in platform_rows(home, audit_log)
        ),
        "outbox": sorted(row["event_type"] for row in platform_rows(home, notification_outbox)),
    }


def test_candidates_train_in_parallel_on_two_workers_with_a_multiprocess_run_s_result(
    broker: str, template: Path, tmp_path: Path
) -> None:
    queue = f"retrain-test-{uuid.uuid4().hex[:8]}"
    celery_home = copy_state(template, tmp_path / "celery" / ".retrain")
    variables = environment(celery_home, "celery", broker)
    with celery_workers(celery_home, variables, queue) as workers:
        run, found, _ = launched_run(celery_home, variables, queue_config(queue))
        logs = {worker.name: tail(worker.log) for worker in workers}
    assert run.status == dg.DagsterRunStatus.SUCCESS, logs

    candidates = candidate_steps(found)
    hostnames = {worker.hostname() for worker in workers}
    assert len(candidates) == 4
    assert {step.worker for step in candidates} == hostnames  # both workers trained
    assert all(step.pid is not None and step.pid != os.getpid() for step in candidates)
    assert any(overlapping(a, b) for a in candidates for b in candidates if a.worker != b.worker), (
        candidates
    )

    local_home = copy_state(template, tmp_path / "multiprocess" / ".retrain")
    local, local_steps, _ = launched_run(
        local_home, environment(local_home, "multiprocess"), FORKSERVER
    )
    assert local.status == dg.DagsterRunStatus.SUCCESS
    assert all(step.worker is None for step in local_steps.values())
    assert len({step.pid for step in local_steps.values()}) == len(local_steps)  # one per step
    celery_outcome, local_outcome = outcome(celery_home), outcome(local_home)
    assert len(celery_outcome["versions"]) == 4
    assert celery_outcome == local_outcome


def test_a_broker_that_is_down_fails_the_run_naming_it_before_anything_is_registered(
    template: Path, tmp_path: Path, smtp_server: SmtpPeer
) -> None:
    home = copy_state(template, tmp_path / ".retrain")
    down = "amqp://guest:s3cret-pass@127.0.0.1:1//"
    variables = environment(home, "celery", down)
    run, found, logs = launched_run(home, variables)

    assert run.status == dg.DagsterRunStatus.FAILURE
    assert found == {}  # no step started
    text = "\n".join(
        (entry.message or "") + str(entry.dagster_event.event_specific_data)
        for entry in logs
        if entry.dagster_event is not None
    )
    assert "the Celery broker amqp://guest:**@127.0.0.1:1// does not answer" in text
    assert "s3cret-pass" not in text
    assert platform_rows(home, model_versions) == []
    assert files(home / "artifacts") == files(template / "artifacts")  # no model file written

    failure = next(
        e.dagster_event for e in logs if e.dagster_event_type == dg.DagsterEventType.RUN_FAILURE
    )
    resource = NotifierResource(
        database_url=f"sqlite:///{home}/platform.db",
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_security="none",
        notify_to=["ops@example.com"],
    )
    with dg.DagsterInstance.from_config(variables["DAGSTER_HOME"]) as instance:
        from retraining_assets.definitions import build_notification_defs

        sensor = build_notification_defs().resolve_sensor_def(RUN_FAILURE_SENSOR)
        sensor(
            dg.build_run_status_sensor_context(
                sensor_name=RUN_FAILURE_SENSOR,
                dagster_event=failure,
                dagster_instance=instance,
                dagster_run=run,
                resources={RESOURCE_KEY: resource},
            )
        )
    (received,) = smtp_server.messages
    body = received.email.get_body(("plain",)).get_content()
    assert received.email["Subject"].startswith("Run failed: demo_retraining_job")
    assert "BrokerUnavailableError: the Celery broker amqp://guest:" in body
    assert "@127.0.0.1:1// does not answer" in body and "s3cret-pass" not in body


def test_a_worker_killed_mid_step_fails_the_run_and_registers_no_version_twice(
    broker: str, template: Path, tmp_path: Path
) -> None:
    queue = f"retrain-test-{uuid.uuid4().hex[:8]}"
    home = copy_state(template, tmp_path / ".retrain")
    variables = environment(home, "celery", broker)
    with (
        celery_workers(home, variables, queue) as workers,
        dg.DagsterInstance.from_config(variables["DAGSTER_HOME"]) as instance,
    ):
        run_id = launch(home, variables, queue_config(queue))
        killed = kill_a_running_candidate(instance, run_id)
        run = wait_for_run(instance, run_id)
        logs = {worker.name: tail(worker.log) for worker in workers}
        succeeded = {
            entry.step_key
            for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
        }

    assert run.status == dg.DagsterRunStatus.FAILURE, logs
    assert killed not in succeeded
    versions = platform_rows(home, model_versions)
    assert len({row["version"] for row in versions}) == len(versions)
    assert all(count == 1 for count in Counter(row["family"] for row in versions).values())
    assert platform_rows(home, aliases) == []  # no champion from a failed run


def kill_a_running_candidate(instance: dg.DagsterInstance, run_id: str) -> str:
    """SIGKILL the worker process of a candidate step that has started and not ended. The
    process is stopped (SIGSTOP) first, so "not ended" still holds when the kill lands."""
    import time

    deadline = time.monotonic() + 1200
    tried: set[str] = set()
    while time.monotonic() < deadline:
        running = [
            step
            for step in candidate_steps(steps(instance, run_id))
            if step.end is None and step.pid is not None and step.key not in tried
        ]
        for step in running:
            os.kill(step.pid, signal.SIGSTOP)
            if steps(instance, run_id)[step.key].end is None:
                os.kill(step.pid, signal.SIGKILL)
                return step.key
            os.kill(step.pid, signal.SIGCONT)
            tried.add(step.key)
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            raise AssertionError(f"run {run_id} ended before a candidate step could be killed")
        time.sleep(0.2)
    raise AssertionError(f"no candidate step of run {run_id} started")
