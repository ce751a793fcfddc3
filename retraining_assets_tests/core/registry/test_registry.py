"""The model registry on SQLite and on a real PostgreSQL: numbering, artifacts, aliases with
compare-and-set, audit log, approvals and the watermark."""

from __future__ import annotations

import importlib.metadata
import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from retraining_assets.core import schema
from retraining_assets.core.registry import (
    AliasConflictError,
    ApprovalError,
    CorruptArtifactError,
    MissingArtifactError,
    Registry,
    RegistryError,
    UnknownVersionError,
    actual_identity,
    artifacts,
    code_version,
    identity,
)
from retraining_assets.settings import Settings
from retraining_assets_tests.conftest import registered_version

WORKERS = 8
WHO = {"by": "alice", "actual_user": "os-alice"}


def run_in_threads(work: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run ``work(i)`` in WORKERS threads released at the same moment."""
    barrier = threading.Barrier(WORKERS)
    results: list[Any] = []
    errors: list[BaseException] = []

    def target(index: int) -> None:
        barrier.wait()
        try:
            results.append(work(index))
        except BaseException as error:  # collected for the assertions
            errors.append(error)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def count_rows(registry: Registry, table: sa.Table) -> int:
    with registry.engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.count()).select_from(table))


def snapshot(registry: Registry) -> tuple[list[dict], list[dict], list[dict]]:
    """Everything a refused operation must leave untouched."""
    return (
        [move.to_dict() for move in registry.alias_history("demo")],
        [entry.to_dict() for entry in registry.audit_log("demo")],
        [version.to_dict() for version in registry.list_versions("demo")],
    )


# --- versions ------------------------------------------------------------------------------


def test_versions_are_numbered_per_pipeline_and_keep_every_field(registry: Registry) -> None:
    first = registered_version(
        registry,
        metrics={"roc_auc": np.float64(0.8), "brier": float("nan")},
        train_start=datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))),
    )
    assert [registered_version(registry).version for _ in range(2)] == [2, 3]
    assert registered_version(registry, pipeline="other").version == 1

    assert [v.version for v in registry.list_versions("demo")] == [1, 2, 3]
    stored = registry.get_version("demo", 1)
    assert stored == first
    assert stored.status == "registered"
    assert stored.metrics == {"roc_auc": 0.8, "brier": None}  # NaN is not JSON
    assert stored.train_start == datetime(2024, 1, 1)  # converted to naive UTC
    assert stored.params == {"n_estimators": 100}
    assert stored.dataset_spec["target"] == "defaulted"
    assert (stored.run_id, stored.code_version, stored.data_fingerprint) == (
        "run-1",
        "0.1.0+gabc1234",
        "fp-1",
    )
    assert stored.artifact_size == len(b"model-bytes")
    assert stored.profile_hash == stored.profile_sha256  # defaults to the file checksum
    as_dict = json.loads(json.dumps(stored.to_dict()))
    assert as_dict["train_start"] == "2024-01-01T00:00:00Z"
    assert as_dict["created_at"].endswith("Z")


def test_concurrent_registrations_get_distinct_consecutive_numbers(registry: Registry) -> None:
    results, errors = run_in_threads(
        lambda i: registered_version(registry, model_bytes=f"model {i}".encode(), run_id=f"run-{i}")
    )
    assert errors == []
    assert sorted(v.version for v in results) == list(range(1, WORKERS + 1))
    for version in results:  # nobody overwrote anybody's folder
        assert registry.load_model_bytes("demo", version.version) == (
            f"model {version.run_id.split('-')[1]}".encode()
        )
    assert count_rows(registry, schema.model_versions) == WORKERS


def test_unknown_pipeline_or_version_is_refused_by_name(registry: Registry) -> None:
    registered_version(registry)
    for call in (
        lambda: registry.get_version("demo", 99),
        lambda: registry.load_model_bytes("nope", 1),
        lambda: registry.move_alias(
            "demo", "champion", 99, expected_current=None, **WHO, reason=""
        ),
    ):
        with pytest.raises(UnknownVersionError) as caught:
            call()
        assert ("'demo'" in str(caught.value) and "99" in str(caught.value)) or (
            "'nope'" in str(caught.value) and "version 1" in str(caught.value)
        )


def test_names_that_could_escape_the_artifact_folder_are_refused(registry: Registry) -> None:
    with pytest.raises(ValueError, match="invalid pipeline name"):
        registered_version(registry, pipeline="../outside")


def test_set_status_is_audited(registry: Registry) -> None:
    registered_version(registry)
    updated = registry.set_status("demo", 1, "archived", **WHO, reason="superseded")
    assert updated.status == "archived"
    entry = registry.audit_log("demo")[-1]
    assert (entry.action, entry.version, entry.details) == (
        "status",
        1,
        {"from": "registered", "to": "archived"},
    )
    with pytest.raises(ValueError, match="unknown status"):
        registry.set_status("demo", 1, "deployed", **WHO)


# --- artifacts -----------------------------------------------------------------------------


def test_artifacts_are_written_under_the_root_and_verified_on_load(registry: Registry) -> None:
    version = registered_version(registry)
    folder = registry.artifact_root / "demo" / "v1"
    assert sorted(path.name for path in folder.iterdir()) == ["model.bin", "profile.bin"]
    assert version.artifact_uri == "demo/v1/model.bin"  # relative: a copied home reads its own
    assert registry.load_model_bytes("demo", 1) == b"model-bytes"
    assert registry.load_profile_bytes("demo", 1) == b"profile-bytes"
    assert registered_version(registry, profile_bytes=None).profile_uri is None
    assert registry.load_profile_bytes("demo", 2) is None
    registered_version(registry, profile_bytes=b"")  # empty is a profile too, not "none"
    assert registry.load_profile_bytes("demo", 3) == b""


@pytest.mark.parametrize(
    "file, load", [("model.bin", "load_model_bytes"), ("profile.bin", "load_profile_bytes")]
)
def test_a_corrupt_artifact_is_refused_naming_file_and_checksums(
    registry: Registry, file: str, load: str
) -> None:
    version = registered_version(registry)
    path = registry.artifact_root / "demo" / "v1" / file
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptArtifactError) as caught:
        getattr(registry, load)("demo", 1)
    message = str(caught.value)
    expected = version.artifact_sha256 if file == "model.bin" else version.profile_sha256
    assert f"demo/v1/{file}" in message and "demo v1" in message
    assert expected in message
    assert artifacts.sha256(bytes(data)) in message


def test_a_missing_artifact_is_refused_naming_the_file(registry: Registry) -> None:
    registered_version(registry)
    path = registry.artifact_root / "demo" / "v1" / "model.bin"
    path.unlink()
    with pytest.raises(MissingArtifactError, match="missing") as caught:
        registry.load_model_bytes("demo", 1)
    assert isinstance(caught.value, CorruptArtifactError)  # one kind of error to catch
    assert "demo/v1/model.bin of demo v1" in str(caught.value)


@pytest.mark.parametrize("failure", ["constraint violation", "error inside the transaction"])
def test_a_failed_registration_leaves_no_files_and_no_rows(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    registered_version(registry)
    before = snapshot(registry)
    if failure == "constraint violation":
        broken: dict[str, Any] = {"data_fingerprint": None}  # NOT NULL
        expected_error: type[BaseException] = sa.exc.IntegrityError
    else:
        broken = {}
        expected_error = RuntimeError

        def fail(*_args: Any, **_kwargs: Any) -> None:
            raise RuntimeError("boom")

        monkeypatch.setattr(registry, "audit", fail)
    with pytest.raises(expected_error):
        registered_version(registry, **broken)
    assert not (registry.artifact_root / "demo" / "v2").exists()
    monkeypatch.undo()
    assert snapshot(registry) == before
    assert registered_version(registry).version == 2  # the number was not burnt


# --- aliases -------------------------------------------------------------------------------


def test_alias_moves_keep_a_full_history_oldest_first(registry: Registry) -> None:
    for _ in range(3):
        registered_version(registry)
    move = registry.move_alias("demo", "champion", 1, expected_current=None, **WHO, reason="first")
    registry.move_alias("demo", "champion", 2, expected_current=1, **WHO, reason="better")
    registry.move_alias(
        "demo", "challenger", 3, expected_current=None, **WHO, reason="try", action="challenge"
    )
    registry.rollback(
        "demo", 1, expected_current=2, by="bob", actual_user="os-bob", reason="v2 misbehaves"
    )

    assert move.previous_version is None and move.version == 1
    champion = registry.get_alias("demo", "champion")
    assert champion is not None and champion.version == 1
    assert champion.profile_sha256 == registry.get_version("demo", 1).profile_sha256
    history = registry.alias_history("demo", "champion")
    assert [(m.previous_version, m.version, m.action, m.by) for m in history] == [
        (None, 1, "promote", "alice"),
        (1, 2, "promote", "alice"),
        (2, 1, "rollback", "bob"),
    ]
    assert history[-1].actual_user == "os-bob" and history[-1].reason == "v2 misbehaves"
    assert [m.alias for m in registry.alias_history("demo")] == [
        "champion",
        "champion",
        "challenger",
        "champion",
    ]
    assert registry.get_alias("demo", "missing") is None
    json.dumps([m.to_dict() for m in history])


def test_clearing_an_alias_is_recorded_and_compare_and_set(registry: Registry) -> None:
    registered_version(registry)
    registry.move_alias("demo", "challenger", 1, expected_current=None, **WHO, reason="")
    with pytest.raises(AliasConflictError):
        registry.clear_alias("demo", "challenger", expected_current=7, **WHO, reason="")
    cleared = registry.clear_alias(
        "demo", "challenger", expected_current=1, **WHO, reason="experiment over"
    )
    assert (cleared.previous_version, cleared.version, cleared.action) == (1, None, "clear")
    assert registry.get_alias("demo", "challenger") is None
    assert registry.audit_log("demo")[-1].action == "clear"
    registry.move_alias("demo", "challenger", 1, expected_current=None, **WHO, reason="again")
    assert len(registry.alias_history("demo", "challenger")) == 3


@pytest.mark.parametrize("current, stale", [(2, 1), (2, None), (None, 1)])
def test_a_stale_expected_version_is_refused_and_nothing_is_written(
    registry: Registry, current: int | None, stale: int | None
) -> None:
    for _ in range(3):
        registered_version(registry)
    if current is not None:
        registry.move_alias("demo", "champion", current, expected_current=None, **WHO, reason="")
    before = snapshot(registry)
    with pytest.raises(AliasConflictError) as caught:
        registry.move_alias("demo", "champion", 3, expected_current=stale, **WHO, reason="late")
    assert (caught.value.expected, caught.value.found) == (stale, current)
    assert snapshot(registry) == before
    got = registry.get_alias("demo", "champion")
    assert (got.version if got else None) == current


@pytest.mark.parametrize("start", [1, None], ids=["from-v1", "first-move"])
def test_racing_moves_from_the_same_version_have_exactly_one_winner(
    registry: Registry, start: int | None
) -> None:
    for _ in range(WORKERS + 1):
        registered_version(registry)
    if start is not None:
        registry.move_alias("demo", "champion", start, expected_current=None, **WHO, reason="")
    history_before = len(registry.alias_history("demo"))
    audit_before = len(registry.audit_log("demo"))

    results, errors = run_in_threads(
        lambda i: registry.move_alias(
            "demo",
            "champion",
            i + 2,
            expected_current=start,
            by=f"run-{i}",
            actual_user="dagster",
            reason="race",
        )
    )
    assert len(results) == 1
    assert len(errors) == WORKERS - 1
    assert all(isinstance(error, AliasConflictError) for error in errors)
    winner = results[0]
    assert registry.get_alias("demo", "champion").version == winner.version
    new_history = registry.alias_history("demo")[history_before:]
    assert [(m.previous_version, m.version, m.by) for m in new_history] == [
        (start, winner.version, winner.by)
    ]
    new_audit = registry.audit_log("demo")[audit_before:]
    assert [(e.action, e.version, e.by) for e in new_audit] == [
        ("promote", winner.version, winner.by)
    ]


def test_a_rejected_version_cannot_get_an_alias(registry: Registry) -> None:
    registered_version(registry)
    registry.set_status("demo", 1, "rejected", **WHO)
    with pytest.raises(RegistryError, match="rejected"):
        registry.move_alias("demo", "champion", 1, expected_current=None, **WHO, reason="")
    assert registry.alias_history("demo") == []


def test_a_failure_later_in_the_callers_transaction_undoes_the_move(registry: Registry) -> None:
    registered_version(registry)
    before = snapshot(registry)
    with pytest.raises(RuntimeError, match="notification failed"), registry.transaction() as tx:
        registry.move_alias(
            "demo", "champion", 1, expected_current=None, **WHO, reason="", connection=tx
        )
        raise RuntimeError("notification failed")
    assert snapshot(registry) == before
    assert registry.get_alias("demo", "champion") is None


# --- audit log -----------------------------------------------------------------------------


def test_the_audit_log_is_append_only_and_complete(registry: Registry) -> None:
    seen: list[dict] = []

    def check(*actions: str) -> None:
        log = [entry.to_dict() for entry in registry.audit_log("demo")]
        assert log[: len(seen)] == seen  # nothing earlier changed or vanished
        assert [entry["action"] for entry in log[len(seen) :]] == list(actions)
        seen[:] = log

    registry.audit(
        "demo",
        "trigger",
        **WHO,
        reason="drift",
        details={"psi": np.float32(0.5), "months": np.array([1, 2])},
    )
    check("trigger")
    registry.audit("demo", "retraining_started", **WHO, details={"run_id": "r1"})
    check("retraining_started")
    registered_version(registry)
    check("candidate_registered")
    registry.audit("demo", "decision", version=1, **WHO, details={"decision": "PROMOTE"})
    check("decision")
    registry.move_alias("demo", "champion", 1, expected_current=None, **WHO, reason="gain 7%")
    check("promote")
    registered_version(registry)
    registry.request_approval("demo", 2, decision={"gain": 0.02}, by="policy")
    check("candidate_registered", "approval_requested")
    registry.resolve_approval("demo", 2, approved=False, **WHO, reason="too small")
    check("reject")

    first = registry.audit_log("demo")[0]
    assert (first.by, first.actual_user, first.reason, first.details) == (
        "alice",
        "os-alice",
        "drift",
        {"psi": 0.5, "months": [1, 2]},
    )
    assert [e.action for e in registry.audit_log("demo", limit=2)] == [
        "approval_requested",
        "reject",
    ]
    assert registry.audit_log("other") == []
    json.dumps([entry.to_dict() for entry in registry.audit_log("demo")])


# --- approvals -----------------------------------------------------------------------------


def test_an_approval_is_requested_listed_and_resolved_once(registry: Registry) -> None:
    registered_version(registry)
    registered_version(registry)
    registry.move_alias("demo", "champion", 1, expected_current=None, **WHO, reason="")
    pending = registry.request_approval("demo", 2, decision={"gain": 0.03}, by="policy")
    assert pending.status == "pending" and pending.decision == {"gain": 0.03}
    assert [a.version for a in registry.pending_approvals("demo")] == [2]
    assert registry.get_version("demo", 2).status == "pending_approval"
    with pytest.raises(ApprovalError, match="already has"):
        registry.request_approval("demo", 2, decision={}, by="policy")

    move = registry.approve_and_promote("demo", 2, expected_current=1, **WHO, reason="ok")
    assert move.version == 2 and registry.get_alias("demo", "champion").version == 2
    assert registry.pending_approvals("demo") == []
    resolved = registry.get_approval("demo", 2)
    assert (resolved.status, resolved.resolved_by, resolved.resolved_actual_user) == (
        "approved",
        "alice",
        "os-alice",
    )
    assert registry.get_version("demo", 2).status == "approved"
    assert [e.action for e in registry.audit_log("demo")[-2:]] == ["approve", "promote"]

    with pytest.raises(ApprovalError, match="already resolved"):
        registry.resolve_approval("demo", 2, approved=False, **WHO, reason="changed my mind")
    with pytest.raises(ApprovalError, match="no approval request"):
        registry.resolve_approval("demo", 1, approved=True, **WHO, reason="")
    assert registry.get_approval("demo", 2).status == "approved"


def test_approving_against_a_moved_champion_changes_nothing(registry: Registry) -> None:
    for _ in range(3):
        registered_version(registry)
    registry.move_alias("demo", "champion", 1, expected_current=None, **WHO, reason="")
    registry.request_approval("demo", 3, decision={"gain": 0.02}, by="policy")
    registry.move_alias("demo", "champion", 2, expected_current=1, **WHO, reason="other run")
    before = snapshot(registry)
    with pytest.raises(AliasConflictError):
        registry.approve_and_promote("demo", 3, expected_current=1, **WHO, reason="stale")
    assert snapshot(registry) == before
    assert [a.version for a in registry.pending_approvals("demo")] == [3]


def test_a_newer_request_supersedes_the_pending_ones(registry: Registry) -> None:
    for _ in range(3):
        registered_version(registry)
    registry.move_alias("demo", "champion", 1, expected_current=None, **WHO, reason="")
    registry.request_approval("demo", 2, decision={"gain": 0.02}, by="policy")
    registry.request_approval("demo", 3, decision={"gain": 0.03}, by="policy")
    assert [a.version for a in registry.pending_approvals("demo")] == [3]
    old = registry.get_approval("demo", 2)
    assert (old.status, old.resolved_by) == ("superseded", "policy")
    assert old.resolution_reason == "superseded by v3, judged on newer data"
    assert registry.get_version("demo", 2).status == "registered"  # can still be rolled out
    actions = [(e.action, e.version) for e in registry.audit_log("demo")[-2:]]
    assert actions == [("approval_superseded", 2), ("approval_requested", 3)]
    with pytest.raises(ApprovalError, match="already resolved \\(superseded by policy"):
        registry.approve_and_promote("demo", 2, expected_current=1, **WHO, reason="late")
    assert registry.get_alias("demo", "champion").version == 1


def test_a_rejected_approval_rejects_the_version(registry: Registry) -> None:
    registered_version(registry)
    registry.request_approval("demo", 1, decision={}, by="policy")
    resolved = registry.resolve_approval("demo", 1, approved=False, **WHO, reason="no")
    assert resolved.status == "rejected" and resolved.resolution_reason == "no"
    assert registry.get_version("demo", 1).status == "rejected"


# --- watermark, identity, settings -----------------------------------------------------------


def test_the_watermark_round_trips(registry: Registry) -> None:
    assert registry.get_watermark("demo") is None
    registry.set_watermark("demo", datetime(2024, 3, 31, 23, 59), run_id="r1")
    assert registry.get_watermark("demo") == datetime(2024, 3, 31, 23, 59)
    registry.set_watermark("demo", datetime(2024, 5, 1, 2, tzinfo=timezone(timedelta(hours=2))))
    assert registry.get_watermark("demo") == datetime(2024, 5, 1)
    assert registry.get_watermark("other") is None
    assert count_rows(registry, schema.training_watermarks) == 1


def test_actual_identity_names_the_os_user_with_a_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert actual_identity()

    def no_user() -> str:
        raise OSError("no passwd entry")

    monkeypatch.setattr(identity.getpass, "getuser", no_user)
    assert actual_identity().startswith("uid:")


def test_code_version_starts_with_the_package_version() -> None:
    assert code_version().split("+")[0] == importlib.metadata.version("retraining_assets")


def test_the_registry_from_settings_uses_the_platform_database(settings: Settings) -> None:
    registry = Registry.from_settings(settings)
    assert registry.artifact_root == settings.artifact_path
    registered_version(registry)
    assert registry.load_model_bytes("demo", 1) == b"model-bytes"
    assert (settings.artifact_path / "demo" / "v1" / "model.bin").is_file()
