"""The promotion gate, approval and rollback end to end, on a real Dagster instance."""

import hashlib
import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from retraining_assets.cli import main
from retraining_assets.core.database import platform_engine
from retraining_assets.core.demo import DemoStream
from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.core.promotion import Verdict
from retraining_assets.core.reference import ReferenceStore, champion_reference
from retraining_assets.core.registry import CHAMPION, CorruptArtifactError, Registry
from retraining_assets.core.schema import notification_outbox
from retraining_assets.definitions import build_definitions
from retraining_assets_tests.conftest import MONTHLY
from retraining_assets_tests.defs.homes import build_template, copied_state

STREAM = DemoStream(rows_per_month=600, months=5, end_month=pd.Timestamp("2024-05-01"))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """Three months monitored and the first model promoted, as the demo does it: built once
    per module, then copied for each test (``state``), so no test sees another's changes."""
    home = tmp_path_factory.mktemp("state") / ".retrain"
    return home, build_template(home, STREAM, 3, **MONTHLY)


@pytest.fixture
def state(template: tuple[Path, list], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A private copy of the template state: its settings, a simulation on its own Dagster
    instance, and the template's period outcomes (read-only)."""
    source, outcomes = template
    home = tmp_path / "copy" / ".retrain"
    with copied_state(source, home, STREAM, monkeypatch, **MONTHLY) as (settings, simulation):
        yield settings, simulation, outcomes


@pytest.fixture
def cli_env(state, monkeypatch: pytest.MonkeyPatch):
    settings, *_ = state
    monkeypatch.setenv("RETRAIN_HOME", str(settings.home))
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))
    return settings


def _registry(settings) -> Registry:
    return Registry.from_settings(settings)


def _subjects(settings) -> list[str]:
    query = sa.select(notification_outbox.c.subject).order_by(notification_outbox.c.id)
    with platform_engine(settings.platform_database_url).connect() as connection:
        return connection.execute(query).scalars().all()


def test_first_model_is_promoted_through_the_gate(state) -> None:
    settings, _, outcomes = state
    first = outcomes[2]
    assert "no_champion" in first.sensor.tags["retrain/causes"]
    assert first.checks["promotion_threshold"] is True
    champion = _registry(settings).get_alias("demo", CHAMPION)
    assert champion is not None and first.value("champion_model", "version") == champion.version
    # the UI shows where the champion's artifact is and the checksum every load verifies
    uri = first.value("champion_model", "artifact_uri")
    assert uri == _registry(settings).get_version("demo", champion.version).artifact_uri
    path = first.value("champion_model", "artifact_path")  # where the template wrote it
    assert Path(path).parts[-len(Path(uri).parts) :] == Path(uri).parts and Path(path).is_file()
    artifact = (settings.artifact_path / uri).read_bytes()
    assert first.value("champion_model", "artifact_sha256") == hashlib.sha256(artifact).hexdigest()
    subjects = _subjects(settings)
    pending = next(i for i, s in enumerate(subjects) if s.startswith("Promotion pending:"))
    done = next(i for i, s in enumerate(subjects) if s.startswith("Promoted:"))
    assert pending < done  # administrators hear before the model changes
    reference = ReferenceStore(settings.artifact_path).load("demo")
    assert reference.origin == f"champion v{champion.version}"


def test_a_failing_gate_keeps_the_champion_without_failing_the_run(state) -> None:
    settings, simulation, _ = state
    before = _registry(settings).get_alias("demo", CHAMPION).version
    strict = settings.model_copy(update={"promotion_min_lift": 100.0})
    pipeline = demo_pipeline(strict, STREAM)
    defs = build_definitions(strict, [pipeline])
    result = defs.resolve_job_def("demo_retraining_job").execute_in_process(
        instance=simulation.instance,
        partition_key=STREAM.partition_key(2),
        tags={"retrain/force": "true"},
    )
    assert result.success  # a rejected or pending candidate is a decision, not a failure
    gate = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "promotion_threshold"
    )
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.WARN
    (evaluation,) = [  # beside it: reference_data, moved to this window (drift_reference)
        m
        for m in result.asset_materializations_for_node("demo__model_evaluation")
        if m.asset_key == dg.AssetKey(["demo", "model_evaluation"])
    ]
    metadata = evaluation.metadata
    if metadata["decision"].value == Verdict.PENDING:  # a gain below the bar: a person decides
        version = metadata["candidate_version"].value
        assert f"retrain approve {version} --pipeline demo" in metadata["to_approve"].value
        assert "demo_reject_job" in metadata["to_reject"].value
    else:
        assert metadata["decision"].value == "reject" and "to_approve" not in metadata
    assert result.asset_materializations_for_node("demo__champion_model") == []
    assert _registry(settings).get_alias("demo", CHAMPION).version == before


@pytest.mark.parametrize("drift_reference", ["validated", "training"])
def test_a_judgement_that_keeps_the_champion_moves_the_drift_reference_to_its_window(
    state, drift_reference: str
) -> None:
    settings, simulation, _ = state
    registry, store = _registry(settings), ReferenceStore(settings.artifact_path)
    champion = registry.get_alias("demo", CHAMPION).version
    own = store.load("demo")
    assert own.origin == f"champion v{champion}"
    strict = settings.model_copy(
        update={"promotion_min_lift": 100.0, "drift_reference": drift_reference}
    )
    defs = build_definitions(strict, [demo_pipeline(strict, STREAM)])
    result = defs.resolve_job_def("demo_retraining_job").execute_in_process(
        instance=simulation.instance,
        partition_key=STREAM.partition_key(3),  # a newer window than the champion's
        tags={"retrain/force": "true"},
    )
    assert result.success
    assert registry.get_alias("demo", CHAMPION).version == champion
    judged = registry.list_versions("demo")[-1]  # a candidate of this run's window
    assert judged.train_end > own.end
    moved = store.load("demo")
    recorded = simulation.instance.get_latest_materialization_event(
        dg.AssetKey(["demo", "reference_data"])
    ).asset_materialization.metadata
    if drift_reference == "training":  # the champion's own window until the champion changes
        assert moved.to_bytes() == own.to_bytes()
        assert recorded["origin"].value == own.origin
        return
    # drift, prediction drift and the period checks compare with the judged window now
    assert moved.champion_version == champion
    assert moved.origin.startswith(f"champion v{champion}, re-validated")
    assert (moved.start, moved.end) == (judged.train_start, judged.train_end)
    assert moved.profile.content_hash != own.profile.content_hash
    assert moved.estimator == own.estimator  # the champion's own estimate, not a candidate's
    assert recorded["origin"].value == moved.origin  # the UI shows where drift compares now
    # a rollback (or promotion) brings the new champion's own reference back
    assert champion_reference(registry, "demo").to_bytes() == own.to_bytes()


def test_approve_from_the_cli_moves_the_champion_and_tells_dagster(state, cli_env) -> None:
    settings, simulation, _ = state
    registry = _registry(settings)
    champion = registry.get_alias("demo", CHAMPION).version
    candidate = next(
        v.version for v in reversed(registry.list_versions("demo")) if v.version != champion
    )
    assert registry.get_approval("demo", candidate) is None  # the first model was promoted
    registry.request_approval("demo", candidate, decision={"champion_version": champion,
                              "metric": "accuracy", "lift": 0.02}, by="test")  # fmt: skip
    result = CliRunner().invoke(
        main, ["approve", str(candidate), "--by", "alice", "--reason", "ok"]
    )
    assert result.exit_code == 0, result.output
    assert registry.get_alias("demo", CHAMPION).version == candidate
    entry = next(e for e in reversed(registry.audit_log("demo")) if e.action == "promote")
    assert entry.by == "alice" and entry.actual_user and entry.version == candidate
    event = simulation.instance.get_latest_materialization_event(
        dg.AssetKey(["demo", "champion_model"])
    )
    assert event.asset_materialization.metadata["version"].value == candidate
    assert ReferenceStore(settings.artifact_path).load("demo").origin == f"champion v{candidate}"
    # approving again is refused and changes nothing
    audit = len(registry.audit_log("demo"))
    again = CliRunner().invoke(main, ["approve", str(candidate), "--by", "alice", "--reason", "x"])
    assert again.exit_code == 2 and "no pending approval" in again.output
    assert len(registry.audit_log("demo")) == audit


def test_rollback_job_restores_the_previous_champion_and_its_reference(state) -> None:
    settings, simulation, _ = state
    registry = _registry(settings)
    # the first champion has none before it: move to another version to go back from
    assert registry.alias_history("demo", CHAMPION)[-1].previous_version is None
    first = registry.get_alias("demo", CHAMPION).version
    other = next(v.version for v in registry.list_versions("demo") if v.version != first)
    registry.move_alias(
        "demo", CHAMPION, other, expected_current=first, by="t", actual_user="t", reason="setup"
    )
    current = registry.get_alias("demo", CHAMPION).version
    previous = registry.alias_history("demo", CHAMPION)[-1].previous_version
    result = simulation.defs.resolve_job_def("demo_rollback_job").execute_in_process(
        instance=simulation.instance,
        run_config={"ops": {"demo_rollback": {"config": {"user": "bob", "reason": "bad canary"}}}},
    )
    assert result.success
    assert registry.get_alias("demo", CHAMPION).version == previous != current
    move = registry.alias_history("demo", CHAMPION)[-1]
    assert (move.action, move.by, move.previous_version) == ("rollback", "bob", current)
    assert ReferenceStore(settings.artifact_path).load("demo").origin == f"champion v{previous}"
    assert any(s.startswith("Rolled back:") for s in _subjects(settings))


def test_status_json_is_only_json_with_the_documented_keys(state, cli_env) -> None:
    result = CliRunner().invoke(main, ["status", "--json"])
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert {"champion", "pending_approvals", "alias_history", "audit"} <= set(report)
    assert {"version", "family", "metrics", "promoted_at"} <= set(report["champion"])
    moments = [move["at"] for move in report["alias_history"]]
    assert moments == sorted(moments) and len(moments) >= 1
    assert {"alias", "version", "previous_version", "at", "by", "reason"} <= set(
        report["alias_history"][0]
    )


@pytest.mark.parametrize(
    "command", [["approve", "999"], ["rollback", "--to", "999"], ["reject", "999"]]
)
def test_unknown_versions_are_refused_and_nothing_is_written(state, cli_env, command) -> None:
    settings, *_ = state
    audit = len(_registry(settings).audit_log("demo"))
    result = CliRunner().invoke(main, [*command, "--by", "eve", "--reason", "typo"])
    assert result.exit_code == 2 and "999" in result.output
    assert len(_registry(settings).audit_log("demo")) == audit


def test_a_corrupt_champion_artifact_stops_evaluation_clearly(state) -> None:
    settings, simulation, _ = state
    registry = _registry(settings)
    champion = registry.get_alias("demo", CHAMPION)
    path = registry.artifact_root / champion.artifact_uri
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))  # this test's copy only
    with pytest.raises(CorruptArtifactError, match=str(path.name)):
        registry.load_model_bytes("demo", champion.version)
    result = simulation.defs.resolve_job_def("demo_retraining_job").execute_in_process(
        instance=simulation.instance,
        partition_key=STREAM.partition_key(2),
        tags={"retrain/force": "true"},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "demo__model_evaluation"
    assert registry.get_alias("demo", CHAMPION).version == champion.version
