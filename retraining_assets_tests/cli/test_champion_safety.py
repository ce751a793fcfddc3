"""Changing the production model safely, through the real ``retrain`` CLI and operator jobs:
signed artifacts verified before anything moves or is announced, one winner among racing
rollbacks, notices only for changes that happen, named operators, no record source needed."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from retraining_assets.cli import main
from retraining_assets.core.candidates import load_model
from retraining_assets.core.database import platform_engine
from retraining_assets.core.demo import SPEC
from retraining_assets.core.reference import Reference
from retraining_assets.core.registry import CHAMPION, ArtifactError, Registry
from retraining_assets.core.schema import model_versions, notification_outbox
from retraining_assets.settings import Settings, load_settings
from retraining_assets_tests.conftest import SMALL_STREAM, registered_version, with_champion

WHO = {"by": "setup", "actual_user": "setup"}
ROOT = Path(__file__).resolve().parents[2]
RETRAIN = str(Path(sys.executable).parent / "retrain")  # the installed console script


def _profile() -> bytes:
    frame = SMALL_STREAM.generate(0)
    return Reference.fit(frame, SPEC, datetime(2024, 1, 1), datetime(2024, 2, 1), "t").to_bytes()


def _register(registry: Registry, n: int = 3) -> None:
    profile = _profile()
    for index in range(n):
        registered_version(
            registry, model_bytes=f"model {index}".encode(), profile_bytes=profile,
            metrics={"valid": {"accuracy": 0.8}}, data_fingerprint=f"fp{index}", **WHO,
        )  # fmt: skip


@pytest.fixture
def deployed(settings: Settings) -> Registry:
    """Three versions of the demo pipeline; v1 then v2 champion (v2 the bad one)."""
    registry = Registry.from_settings(settings)
    _register(registry)
    with_champion(registry, 1, 2)
    return registry


def _notices(registry: Registry) -> list[str]:
    with registry.engine.connect() as connection:
        rows = connection.execute(
            sa.select(notification_outbox.c.event_type).order_by(notification_outbox.c.id)
        )
        return list(rows.scalars())


def _champion(registry: Registry) -> int:
    return registry.get_alias("demo", CHAMPION).version


def _cli(*arguments: str):
    return CliRunner().invoke(main, list(arguments))


def _damage(registry: Registry, version: int, how: str) -> None:
    record = registry.get_version("demo", version)
    path = registry.artifact_root / record.artifact_uri
    if how == "missing":
        path.unlink()
    elif how == "corrupt":
        path.write_bytes(path.read_bytes() + b"!")
    else:  # "unsigned": the row forged, its signature removed
        with registry.engine.begin() as connection:
            connection.execute(
                sa.update(model_versions)
                .where(model_versions.c.version == version)
                .values(artifact_signature=None)
            )


# --- item 4: the target's artifact is verified before anything is announced or moved --------


@pytest.mark.parametrize("how", ["missing", "corrupt", "unsigned"])
@pytest.mark.parametrize("command", ["rollback --to", "rollback", "approve"])
def test_a_change_to_a_version_whose_artifact_fails_is_refused_with_nothing_announced(
    deployed: Registry, how: str, command: str
) -> None:
    if command == "approve":
        deployed.request_approval("demo", 3, decision={"champion_version": 2}, by="gate")
        arguments, target = ["approve", "3"], 3
    else:
        arguments, target = command.split(), 1
        if command == "rollback --to":
            arguments.append("1")
    _damage(deployed, target, how)
    audit = len(deployed.audit_log("demo"))
    result = _cli(*arguments, "--by", "alice", "--reason", "bad model")
    assert result.exit_code == 2, result.output
    assert f"demo v{target}" in result.output and len(result.output.strip().splitlines()) == 1
    assert _champion(deployed) == 2 and _notices(deployed) == []
    assert len(deployed.audit_log("demo")) == audit


def test_the_rollback_and_approve_jobs_refuse_a_bad_artifact_before_any_notice(
    deployed: Registry, settings: Settings
) -> None:
    from retraining_assets.core.pipeline import demo_pipeline
    from retraining_assets.definitions import build_definitions

    deployed.request_approval("demo", 3, decision={"champion_version": 2}, by="gate")
    _damage(deployed, 1, "corrupt")
    _damage(deployed, 3, "unsigned")
    defs = build_definitions(settings, [demo_pipeline(settings, SMALL_STREAM)])
    with dg.instance_for_test() as instance:
        for job, version in (("rollback", 1), ("approve", 3)):
            config = {"user": "bob", "reason": "x", "version": version}
            result = defs.resolve_job_def(f"demo_{job}_job").execute_in_process(
                instance=instance,
                run_config={"ops": {f"demo_{job}": {"config": config}}},
                raise_on_error=False,
            )
            assert not result.success
            failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
            assert f"demo v{version}" in failure.event_specific_data.user_failure_data.description
    assert _champion(deployed) == 2 and _notices(deployed) == []


# --- item 9: a forged row or file runs nothing ------------------------------------------------


class _Payload:
    """A pickle that writes a marker file when it is loaded: what an attacker would plant."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


@pytest.mark.parametrize("where", ["outside the root", "inside the root", "copied signature"])
def test_a_forged_row_pointing_at_a_pickle_is_refused_and_nothing_runs(
    deployed: Registry, tmp_path: Path, where: str
) -> None:
    marker = tmp_path / "marker"
    payload = pickle.dumps(_Payload(marker))
    genuine = deployed.get_version("demo", 1)
    if where == "outside the root":
        uri = str(tmp_path / "evil.pkl")
        Path(uri).write_bytes(payload)
    else:
        uri = "demo/v3/model.bin"
        (deployed.artifact_root / uri).write_bytes(payload)
    signature = genuine.artifact_signature if where == "copied signature" else None
    with deployed.engine.begin() as connection:  # what a database writer without the key can do
        connection.execute(
            sa.update(model_versions)
            .where(model_versions.c.version == 3)
            .values(
                artifact_uri=uri,
                artifact_sha256=hashlib.sha256(payload).hexdigest(),
                artifact_signature=signature,
            )
        )
    with pytest.raises(ArtifactError, match="demo v3"):
        load_model(deployed, "demo", 3)
    result = _cli("rollback", "--to", "3", "--by", "mallory", "--reason", "x")
    assert result.exit_code == 2 and "demo v3" in result.output
    assert not marker.exists()
    assert _champion(deployed) == 2 and _notices(deployed) == []


def test_the_key_file_is_created_private_on_first_use_and_never_in_the_database(
    deployed: Registry, settings: Settings
) -> None:
    key_file = settings.home / "artifact.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = key_file.read_text().strip()
    with deployed.engine.connect() as connection:
        dump = "\n".join(str(row) for row in connection.execute(sa.select(model_versions)))
    assert key not in dump
    key_file.chmod(0o644)
    result = _cli("rollback", "--to", "1", "--by", "alice", "--reason", "x")
    assert result.exit_code == 2 and "chmod 600" in result.output
    assert _champion(deployed) == 2


def test_another_key_refuses_every_artifact_until_they_are_re_signed_by_a_rotation(
    deployed: Registry, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "old.key"
    (settings.home / "artifact.key").rename(old)
    monkeypatch.setenv("RETRAIN_ARTIFACT_KEY", "n" * 40)
    refused = _cli("rollback", "--to", "1", "--by", "alice", "--reason", "x")
    assert refused.exit_code == 2 and "RETRAIN_ARTIFACT_KEY" in refused.output
    rotated = _cli("sign-artifacts", "--previous-key-file", str(old), "--by", "alice")
    assert rotated.exit_code == 0, rotated.output
    assert "signed: v1, v2, v3" in rotated.output
    moved = _cli("rollback", "--to", "1", "--by", "alice", "--reason", "x")
    assert moved.exit_code == 0, moved.output
    assert _champion(Registry.from_settings(load_settings())) == 1


def test_migration_0006_makes_uris_relative_and_unsigned_rows_wait_for_trust(
    settings: Settings,
) -> None:
    from alembic import command

    from retraining_assets.core.database import _alembic_config, make_engine

    engine = make_engine(settings.platform_database_url)
    command.upgrade(_alembic_config(engine), "0005")
    registry_root = settings.artifact_path
    folder = registry_root / "demo" / "v1"
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"old model")
    row = {
        "pipeline": "demo", "version": 1, "family": "random_forest", "status": "registered",
        "params": {}, "metrics": {}, "data_fingerprint": "f", "code_version": "old",
        "artifact_uri": (folder / "model.bin").as_uri(),
        "artifact_sha256": hashlib.sha256(b"old model").hexdigest(), "artifact_size": 9,
        "dataset_spec": {}, "created_at": datetime(2024, 1, 1),
    }  # fmt: skip
    old_table = sa.Table("model_versions", sa.MetaData(), autoload_with=engine)
    with engine.begin() as connection:
        connection.execute(sa.insert(old_table).values(row))
    registry = Registry(platform_engine(settings.platform_database_url), registry_root)
    assert registry.get_version("demo", 1).artifact_uri == "demo/v1/model.bin"
    with pytest.raises(ArtifactError, match="no signature"):
        registry.load_model_bytes("demo", 1)
    result = _cli("sign-artifacts", "--trust-unsigned", "--by", "alice")
    assert result.exit_code == 0 and "signed: v1" in result.output
    assert registry.load_model_bytes("demo", 1) == b"old model"


# --- item 5: racing rollbacks, repeated moves ------------------------------------------------


def _rollback_process(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [RETRAIN, "rollback", "--by", "op", "--reason", "bad"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_two_operators_rolling_back_at_once_restore_the_good_model_exactly_once(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    overrides = {}
    if backend == "postgres":
        overrides["database_url"] = request.getfixturevalue("postgres_database")
    settings = load_settings(home=tmp_path / "home", **overrides)
    registry = Registry.from_settings(settings)
    _register(registry)
    with_champion(registry, 1, 2)
    env = {**os.environ, "RETRAIN_HOME": str(settings.home), "PYTHONPATH": str(ROOT)}
    env["DAGSTER_HOME"] = str(settings.dagster_home)
    if backend == "postgres":
        env["RETRAIN_DATABASE_URL"] = overrides["database_url"]
    processes = [_rollback_process(env) for _ in range(2)]
    outcomes = [(p.wait(), *p.communicate()) for p in processes]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 2], outcomes
    loser = next(err for code, _, err in outcomes if code == 2)
    assert "nothing changed" in loser.lower() or "nothing was changed" in loser.lower()
    assert _champion(registry) == 1
    rollbacks = [m for m in registry.alias_history("demo", CHAMPION) if m.action == "rollback"]
    assert len(rollbacks) == 1
    assert _notices(registry) == ["promotion_pending", "rolled_back"]


def test_a_rollback_never_toggles_back_the_model_just_rolled_back_from(
    deployed: Registry,
) -> None:
    first = _cli("rollback", "--by", "alice", "--reason", "bad")
    assert first.exit_code == 0 and _champion(deployed) == 1
    second = _cli("rollback", "--by", "bob", "--reason", "bad")
    assert second.exit_code == 2 and "--to 2" in second.output and "alice" in second.output
    assert _champion(deployed) == 1
    assert _notices(deployed) == ["promotion_pending", "rolled_back"]


def test_a_repeated_move_is_announced_every_time(deployed: Registry) -> None:
    for target in (1, 2, 1):
        result = _cli("rollback", "--to", str(target), "--by", "alice", "--reason", "flip")
        assert result.exit_code == 0, result.output
    assert _notices(deployed) == ["promotion_pending", "rolled_back"] * 3


# --- item 6: a refused change sends nothing --------------------------------------------------


def test_a_rollback_to_a_rejected_version_sends_nothing(deployed: Registry) -> None:
    deployed.set_status("demo", 3, "rejected", **WHO)
    result = _cli("rollback", "--to", "3", "--by", "alice", "--reason", "x")
    assert result.exit_code == 2 and "rejected" in result.output
    assert _notices(deployed) == [] and _champion(deployed) == 2


def test_a_stale_approval_sends_nothing_and_stays_pending(deployed: Registry) -> None:
    deployed.request_approval("demo", 3, decision={"champion_version": 1}, by="gate")  # stale
    result = _cli("approve", "3", "--by", "alice", "--reason", "ok")
    assert result.exit_code == 2 and "Nothing was changed" in result.output
    assert _notices(deployed) == [] and _champion(deployed) == 2
    assert deployed.get_approval("demo", 3).status == "pending"


# --- item 7: a change names who made it -----------------------------------------------------


@pytest.mark.parametrize("by", ["", "   "])
@pytest.mark.parametrize("command", [["approve", "3"], ["reject", "3"], ["rollback"]])
def test_a_blank_operator_is_refused_in_one_line(
    deployed: Registry, command: list[str], by: str
) -> None:
    deployed.request_approval("demo", 3, decision={"champion_version": 2}, by="gate")
    audit = len(deployed.audit_log("demo"))
    result = _cli(*command, "--by", by, "--reason", "x")
    assert result.exit_code == 2 and "--by" in result.output and "empty" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert len(deployed.audit_log("demo")) == audit and _champion(deployed) == 2


# --- item 8: emergency commands need no record source ----------------------------------------


def test_status_and_rollback_work_while_another_pipelines_source_is_down(
    deployed: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAIN_SOURCE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("RETRAIN_SOURCE_TABLE", "records")
    monkeypatch.setenv("RETRAIN_TIME_COLUMN", "ts")
    monkeypatch.setenv("RETRAIN_TARGET", "y")
    status = _cli("status", "--pipeline", "demo")
    assert status.exit_code == 0 and "champion v2" in status.output
    rollback = _cli("rollback", "--pipeline", "demo", "--by", "alice", "--reason", "outage")
    assert rollback.exit_code == 0, rollback.output
    assert _champion(deployed) == 1


# --- item 3: after a crash right after a champion move, everything catches up ----------------


def test_after_a_crash_right_after_a_move_the_reference_and_champion_model_catch_up(
    deployed: Registry, settings: Settings
) -> None:
    from retraining_assets.core.pipeline import demo_pipeline
    from retraining_assets.core.reference import ReferenceStore
    from retraining_assets.definitions import build_definitions
    from retraining_assets.defs.resources import PLATFORM, PlatformResource

    defs = build_definitions(settings, [demo_pipeline(settings, SMALL_STREAM)])
    sensor = defs.resolve_sensor_def("demo_champion_sync_sensor")
    store = ReferenceStore(settings.artifact_path)
    resources = {PLATFORM: PlatformResource.from_settings(settings)}
    with dg.instance_for_test() as instance:

        def tick() -> dg.SensorResult | dg.SkipReason:
            outcome = sensor(dg.build_sensor_context(instance=instance, resources=resources))
            for event in getattr(outcome, "asset_events", None) or []:
                instance.report_runless_asset_event(event)  # what the daemon records
            return outcome

        assert isinstance(tick(), dg.SensorResult)  # Dagster had never seen v2
        assert isinstance(tick(), dg.SkipReason)
        assert store.load("demo").champion_version == 2
        # the CLI commits v3 and dies before it refreshes anything
        deployed.move_alias("demo", CHAMPION, 3, expected_current=2, reason="x", **WHO)
        assert store.current("demo", deployed).champion_version == 3  # what drift loads
        assert store.load("demo").origin == "champion v3"
        outcome = tick()
        assert isinstance(outcome, dg.SensorResult)
        latest = instance.get_latest_materialization_event(dg.AssetKey(["demo", "champion_model"]))
        assert latest.asset_materialization.metadata["version"].value == 3
        assert isinstance(tick(), dg.SkipReason)


def test_a_short_artifact_key_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRAIN_ARTIFACT_KEY", "short")
    result = _cli("status")
    assert result.exit_code == 2 and "RETRAIN_ARTIFACT_KEY" in result.output
    assert "short" not in result.output.replace("RETRAIN_ARTIFACT_KEY", "")  # no secret echoed
