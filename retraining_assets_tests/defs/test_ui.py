"""What the Dagster UI shows after the demo, asked of a real webserver over GraphQL: the demo's
runs are the code location's runs (listed under their jobs, attributed to their schedule's and
sensor's ticks, the same job version), every check evaluation carries its partition, and the
promotion gate is labelled for what it is."""

from __future__ import annotations

import dagster as dg

from retraining_assets.defs.assets.promotion import GATE
from retraining_assets.defs.jobs import monitoring_job_name, retraining_job_name
from retraining_assets_tests.defs.ui_state import (
    LOCATION,
    REPOSITORY,
    UiState,
    graphql,
)

RUNS = """
query Runs($job: String!) {
  runsOrError(filter: {pipelineName: $job}) {
    ... on Runs { results {
      runId status pipelineSnapshotId
      repositoryOrigin { repositoryLocationName repositoryName }
      tags { key value }
    } }
  }
}"""

JOB = """
query Job($job: String!, $location: String!, $repository: String!) {
  pipelineOrError(params: {pipelineName: $job, repositoryLocationName: $location,
                           repositoryName: $repository}) {
    ... on Pipeline { pipelineSnapshotId }
  }
}"""

TICKS = """
query Ticks($location: String!, $repository: String!, $sensor: String!, $schedule: String!) {
  sensorOrError(sensorSelector: {repositoryLocationName: $location,
                                 repositoryName: $repository, sensorName: $sensor}) {
    ... on Sensor { sensorState { ticks(limit: 50) { status runIds skipReason } } }
  }
  scheduleOrError(scheduleSelector: {repositoryLocationName: $location,
                                     repositoryName: $repository, scheduleName: $schedule}) {
    ... on Schedule { scheduleState { ticks(limit: 50) { status runIds } } }
  }
}"""

CHECK_EXECUTIONS = """
query Executions($path: [String!]!, $check: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $check, limit: 100) {
    runId status partition
  }
}"""

CHECK_SPECS = """
query Specs($path: [String!]!) {
  assetNodes(assetKeys: [{path: $path}]) {
    assetChecksOrError { ... on AssetChecks { checks { name blocking description } } }
  }
}"""


def _runs(state: UiState, job: str) -> list[dict]:
    return graphql(state.url, RUNS, job=job)["runsOrError"]["results"]


def test_demo_runs_are_listed_under_their_jobs_as_the_same_version(ui_state: UiState) -> None:
    for job, expected in (
        (monitoring_job_name("demo"), len(ui_state.partitions)),
        (retraining_job_name("demo"), len(ui_state.retraining_runs)),
    ):
        runs = _runs(ui_state, job)
        assert len(runs) == expected, job
        current = graphql(ui_state.url, JOB, job=job, location=LOCATION, repository=REPOSITORY)[
            "pipelineOrError"
        ]["pipelineSnapshotId"]
        for run in runs:
            assert run["status"] == "SUCCESS"
            assert run["repositoryOrigin"] == {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
            }
            # the UI's re-execute button compares these: no "different version" warning
            assert run["pipelineSnapshotId"] == current
    partitions = sorted(
        tag["value"]
        for run in _runs(ui_state, monitoring_job_name("demo"))
        for tag in run["tags"]
        if tag["key"] == "dagster/partition"
    )
    assert partitions == ui_state.partitions


def test_schedule_and_sensor_ticks_list_the_runs_they_started(ui_state: UiState) -> None:
    ticks = graphql(
        ui_state.url,
        TICKS,
        location=LOCATION,
        repository=REPOSITORY,
        sensor="demo_retraining_sensor",
        schedule="demo_monitoring_schedule",
    )
    sensor_ticks = ticks["sensorOrError"]["sensorState"]["ticks"]
    launched = {run for tick in sensor_ticks for run in tick["runIds"]}
    assert launched == set(ui_state.retraining_runs)
    assert all(t["status"] == "SUCCESS" for t in sensor_ticks if t["runIds"])
    # a tick that asked for nothing says why, as the daemon's do
    assert all(t["status"] == "SKIPPED" for t in sensor_ticks if not t["runIds"])
    schedule_ticks = ticks["scheduleOrError"]["scheduleState"]["ticks"]
    monitored = {run for tick in schedule_ticks for run in tick["runIds"]}
    assert monitored == {run["runId"] for run in _runs(ui_state, monitoring_job_name("demo"))}
    for run in _runs(ui_state, retraining_job_name("demo")):
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        assert tags["dagster/sensor_name"] == "demo_retraining_sensor"


def test_every_check_evaluation_is_recorded_against_its_partition(ui_state: UiState) -> None:
    instance = ui_state.instance
    for check in ui_state.data_checks:
        key = dg.AssetCheckKey(dg.AssetKey(["demo", "current_data"]), check)
        history = instance.event_log_storage.get_asset_check_execution_history(key, limit=100)
        # one evaluation per run, none left planned (the UI's "skipped")
        assert len(history) == len(ui_state.partitions), check
        assert {record.status.value for record in history} <= {"SUCCEEDED", "FAILED"}
        assert sorted(record.partition for record in history) == ui_state.partitions
        executions = graphql(
            ui_state.url, CHECK_EXECUTIONS, path=["demo", "current_data"], check=check
        )["assetCheckExecutions"]
        assert sorted(e["partition"] for e in executions) == ui_state.partitions
        assert {e["status"] for e in executions} <= {"SUCCEEDED", "FAILED"}
    gate = graphql(ui_state.url, CHECK_EXECUTIONS, path=["demo", "model_evaluation"], check=GATE)
    gate_runs = {e["runId"]: e for e in gate["assetCheckExecutions"]}
    assert set(gate_runs) == set(ui_state.retraining_runs)
    assert all(e["partition"] in ui_state.partitions for e in gate_runs.values())


def test_the_promotion_gate_is_not_labelled_blocking_and_says_what_moves_the_champion(
    ui_state: UiState,
) -> None:
    nodes = graphql(ui_state.url, CHECK_SPECS, path=["demo", "model_evaluation"])["assetNodes"]
    (gate,) = [c for c in nodes[0]["assetChecksOrError"]["checks"] if c["name"] == GATE]
    # Dagster fails the run of a blocking check that fails; a rejection is a decision
    assert gate["blocking"] is False
    assert "`champion_model` moves" in gate["description"]
    assert "does not fail the run" in gate["description"]
    nodes = graphql(ui_state.url, CHECK_SPECS, path=["demo", "current_data"])["assetNodes"]
    blocking = {c["name"] for c in nodes[0]["assetChecksOrError"]["checks"] if c["blocking"]}
    assert blocking == {"schema", "target_valid", "non_empty"}
