"""Rollout state on SQLite and a real PostgreSQL: start, advance, finish, rollback, halt and stop
are compare-and-set transactions with audit rows, notified before the traffic changes."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from retraining_assets.core import schema
from retraining_assets.core.database import platform_engine
from retraining_assets.core.lifecycle import RolloutActiveError, change_champion, rollback_live
from retraining_assets.core.notify import LogChannel, Notifier
from retraining_assets.core.registry import (
    CHALLENGER,
    CHAMPION,
    Actor,
    AliasConflictError,
    ArtifactError,
    Registry,
    UnknownVersionError,
)
from retraining_assets.core.rollout import RolloutPlan
from retraining_assets.core.rollout import transitions as rs
from retraining_assets_tests.conftest import registered_version, with_champion

PIPELINE = "demo"
ACTOR = Actor(by="alice", actual_user="os-alice")
GRADUAL = RolloutPlan.from_dict(
    {"strategy": "gradual", "steps": [{"share": 0.05}, {"share": 0.5}, {"share": 1.0}]}
)
CANARY = RolloutPlan.from_dict({"strategy": "canary", "share": 0.1})


@pytest.fixture
def notifier(registry: Registry) -> Notifier:
    return Notifier(registry.engine, [LogChannel()])


@pytest.fixture
def versions(registry: Registry) -> list[int]:
    """v1 (the champion), v2 and v3 (candidates), v4 (rejected)."""
    made = [_register(registry, i, "rejected" if i == 4 else "registered") for i in range(1, 5)]
    with_champion(registry, 1, pipeline=PIPELINE)
    return made


def _register(registry: Registry, i: int, status: str) -> int:
    return registered_version(
        registry, PIPELINE, model_bytes=f"model-{i}".encode(), data_fingerprint=f"fp-{i}",
        status=status,
    ).version  # fmt: skip


def _alias(registry: Registry, alias: str) -> int | None:
    found = registry.get_alias(PIPELINE, alias)
    return None if found is None else found.version


def _outbox(registry: Registry) -> dict[str, datetime]:
    """Idempotency key -> when the message was written."""
    table = schema.notification_outbox
    with registry.engine.connect() as connection:
        rows = connection.execute(sa.select(table.c.idempotency_key, table.c.created_at)).all()
    return {key: at for key, at in rows}


def _rollout_rows(registry: Registry) -> int:
    with registry.engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.count()).select_from(schema.rollouts))


def _written(registry: Registry) -> tuple[int, int, int, int]:
    """Counts of everything a refused start must not add to."""
    return (
        len(registry.audit_log(PIPELINE)),
        len(registry.alias_history(PIPELINE)),
        len(_outbox(registry)),
        _rollout_rows(registry),
    )


def _notified_before(registry: Registry, action: str, key_suffix: str) -> None:
    """The message whose key ends with ``key_suffix`` was written before the ``action`` audit
    row and before the alias moves of the same transaction."""
    (entry,) = [e for e in registry.audit_log(PIPELINE) if e.action == action]
    (written,) = [at for key, at in _outbox(registry).items() if key.endswith(key_suffix)]
    assert written <= entry.at
    moves = [m for m in registry.alias_history(PIPELINE) if m.at >= entry.at]
    assert all(written <= move.at for move in moves)


def test_start_records_an_active_rollout_and_routes_by_the_plan(
    registry: Registry, notifier: Notifier, versions: list[int]
) -> None:
    started = rs.start_rollout(
        registry, notifier, PIPELINE, 2, GRADUAL, actor=ACTOR, reason="new model"
    )
    assert (started.status, started.step, started.champion_version) == ("active", 0, 1)
    assert rs.active_rollout(registry, PIPELINE) == started
    assert started.plan == GRADUAL
    assert started.router().weights == {"challenger": 0.05, "champion": 0.95}
    assert started.router() == rs.active_rollout(registry, PIPELINE).router()  # same salt
    assert (_alias(registry, CHALLENGER), _alias(registry, CHAMPION)) == (2, 1)
    as_dict = started.to_dict()
    assert as_dict["plan"] == GRADUAL.to_dict() and as_dict["share"] == 0.05
    assert as_dict["status"] == "active" and as_dict["started_at"].endswith("Z")
    move = registry.alias_history(PIPELINE, CHALLENGER)[-1]
    assert (move.version, move.previous_version, move.action) == (2, None, "challenger_set")
    _notified_before(registry, "rollout_start", ":start")


def test_a_second_start_is_refused_while_one_is_active(
    registry: Registry, notifier: Notifier, versions: list[int]
) -> None:
    rs.start_rollout(registry, notifier, PIPELINE, 2, CANARY, actor=ACTOR, reason="first")
    before = _written(registry)
    with pytest.raises(rs.RolloutError, match="already has an active rollout"):
        rs.start_rollout(registry, notifier, PIPELINE, 3, CANARY, actor=ACTOR, reason="second")
    assert _written(registry) == before
    assert _alias(registry, CHALLENGER) == 2


@pytest.mark.parametrize(
    ("version", "error", "message"),
    [
        (4, rs.RolloutError, "v4 was rejected"),
        (9, UnknownVersionError, "no model version 9"),
        (1, rs.RolloutError, "v1 already is the champion"),
    ],
)
def test_an_unusable_challenger_is_refused_with_nothing_written(
    registry: Registry,
    notifier: Notifier,
    versions: list[int],
    version: int,
    error: type[Exception],
    message: str,
) -> None:
    before = _written(registry)
    with pytest.raises(error, match=message):
        rs.start_rollout(registry, notifier, PIPELINE, version, CANARY, actor=ACTOR, reason="x")
    assert _written(registry) == before
    assert rs.active_rollout(registry, PIPELINE) is None


def test_advance_then_finish_promotes_the_challenger(
    registry: Registry, notifier: Notifier, versions: list[int]
) -> None:
    started = rs.start_rollout(registry, notifier, PIPELINE, 2, GRADUAL, actor=ACTOR, reason="go")
    with pytest.raises(rs.RolloutError, match="not its final step"):
        rs.promote_challenger(registry, notifier, started, actor=ACTOR, reason="too early")
    second = rs.advance(registry, notifier, started, actor=ACTOR, reason="step 0 fine")
    assert second.step == 1 and second.router().weights["challenger"] == 0.5
    assert second.step_started_at >= started.step_started_at
    _notified_before(registry, "rollout_advance", ":advance:1")
    last = rs.advance(registry, notifier, second, actor=ACTOR, reason="step 1 fine")
    with pytest.raises(rs.RolloutError, match="final step; promote it"):
        rs.advance(registry, notifier, last, actor=ACTOR, reason="beyond")
    ended = rs.promote_challenger(registry, notifier, last, actor=ACTOR, reason="not worse")
    assert (ended.status, ended.share, ended.ended_at is not None) == ("promoted", 1.0, True)
    assert ended.router().weights == {"challenger": 1.0, "champion": 0.0}
    assert (_alias(registry, CHAMPION), _alias(registry, CHALLENGER)) == (2, None)
    assert rs.active_rollout(registry, PIPELINE) is None
    _notified_before(registry, "rollout_promote", ":promote")
    promote = [e for e in registry.audit_log(PIPELINE) if e.action == "promote"][-1]
    assert promote.details["rollout_id"] == started.id and promote.version == 2
    assert any(key.startswith(f"rollout:{started.salt}:promoted") for key in _outbox(registry))
    # the pipeline is free for the next rollout
    rs.start_rollout(registry, notifier, PIPELINE, 3, CANARY, actor=ACTOR, reason="next")


@pytest.mark.parametrize(
    ("end", "status"),
    [(rs.rollback_rollout, "rolled_back"), (rs.halt, "halted"), (rs.stop, "stopped")],
)
def test_ending_a_rollout_clears_the_challenger_and_keeps_the_champion(
    registry: Registry,
    notifier: Notifier,
    versions: list[int],
    end: Callable[..., rs.Rollout],
    status: str,
) -> None:
    started = rs.start_rollout(registry, notifier, PIPELINE, 2, CANARY, actor=ACTOR, reason="go")
    ended = end(registry, notifier, started, actor=ACTOR, reason="worse")
    assert (ended.status, ended.share) == (status, 0.0)
    assert ended.router().weights == {"challenger": 0.0, "champion": 1.0}
    assert (_alias(registry, CHAMPION), _alias(registry, CHALLENGER)) == (1, None)
    assert rs.active_rollout(registry, PIPELINE) is None
    cleared = registry.alias_history(PIPELINE, CHALLENGER)[-1]
    assert (cleared.version, cleared.previous_version) == (None, 2)
    _notified_before(registry, f"rollout_{status}", f":{status}")
    with pytest.raises(rs.RolloutConflictError, match="no longer active"):
        end(registry, notifier, started, actor=ACTOR, reason="stale")


def _race(work: Callable[[], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run ``work`` in two threads released at the same moment."""
    barrier = threading.Barrier(2)
    results: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        barrier.wait()
        try:
            results.append(work())
        except BaseException as error:  # collected for the assertions
            errors.append(error)

    threads = [threading.Thread(target=target) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_of_two_racing_advances_exactly_one_wins(
    registry: Registry, notifier: Notifier, versions: list[int]
) -> None:
    started = rs.start_rollout(registry, notifier, PIPELINE, 2, GRADUAL, actor=ACTOR, reason="go")
    results, errors = _race(
        lambda: rs.advance(registry, notifier, started, actor=ACTOR, reason="race")
    )
    assert len(results) == 1 and [type(e) for e in errors] == [rs.RolloutConflictError]
    assert rs.active_rollout(registry, PIPELINE).step == 1
    assert [e.action for e in registry.audit_log(PIPELINE)].count("rollout_advance") == 1


def test_of_two_racing_starts_exactly_one_wins(
    registry: Registry, notifier: Notifier, versions: list[int]
) -> None:
    results, errors = _race(
        lambda: rs.start_rollout(registry, notifier, PIPELINE, 2, CANARY, actor=ACTOR, reason="r")
    )
    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], rs.RolloutError | AliasConflictError)
    assert _rollout_rows(registry) == 1
    assert rs.active_rollout(registry, PIPELINE) == results[0]


def test_finish_is_refused_when_the_champion_moved(
    registry: Registry, notifier: Notifier, versions: list[int]
) -> None:
    started = rs.start_rollout(registry, notifier, PIPELINE, 2, CANARY, actor=ACTOR, reason="go")
    registry.move_alias(
        PIPELINE, CHAMPION, 3, expected_current=1, by="bob", actual_user="bob", reason="manual"
    )
    with pytest.raises(AliasConflictError):
        rs.promote_challenger(registry, notifier, started, actor=ACTOR, reason="done")
    assert rs.active_rollout(registry, PIPELINE) == started
    assert (_alias(registry, CHAMPION), _alias(registry, CHALLENGER)) == (3, 2)


def test_a_pipeline_without_a_champion_cannot_start(registry: Registry, notifier: Notifier) -> None:
    _register(registry, 1, "registered")
    with pytest.raises(rs.RolloutError, match="no champion"):
        rs.start_rollout(registry, notifier, PIPELINE, 1, CANARY, actor=ACTOR, reason="x")
    assert _rollout_rows(registry) == 0


def _subjects(registry: Registry) -> list[str]:
    table = schema.notification_outbox
    with registry.engine.connect() as connection:
        return connection.execute(sa.select(table.c.subject).order_by(table.c.id)).scalars().all()


def test_every_traffic_change_has_its_own_rollout_message(
    registry: Registry, notifier: Notifier, versions: list[int]
) -> None:
    started = rs.start_rollout(registry, notifier, PIPELINE, 2, GRADUAL, actor=ACTOR, reason="go")
    second = rs.advance(
        registry,
        notifier,
        started,
        actor=ACTOR,
        reason="fine",
        evidence={"effect": 0.04, "ci_low": float("-inf"), "p_value": 0.2, "n_challenger": 512},
    )
    rs.halt(registry, notifier, second, actor=ACTOR, reason="sample ratio mismatch")
    subjects = _subjects(registry)
    assert subjects == [
        "Rollout started: demo v2 vs v1, challenger traffic 0% -> 5.0%",
        "Rollout step: demo v2 vs v1, challenger traffic 5.0% -> 50%",
        "Rollout halted: demo v2 vs v1, challenger traffic 50% -> 0%",
    ]
    assert all(subject.isascii() for subject in subjects)
    table = schema.notification_outbox
    with registry.engine.connect() as connection:
        step = connection.execute(
            sa.select(table.c.body_text).where(table.c.event_type == "rollout_step")
        ).scalar_one()
    facts = {line.split(":")[0]: line.split(":", 1)[1].strip() for line in step.splitlines()[2:9]}
    facts |= dict(re.findall(r"^(Effect.*|Outcomes.*|p-value|Interval.*):\s+(\S+)$", step, re.M))
    assert facts["Effect (challenger - champion)"] == "0.04" and facts["p-value"] == "0.2"
    assert facts["Outcomes, challenger"] == "512" and "Interval low" not in facts
    assert (
        facts["Challenger traffic"] == "5.0% -> 50%"
        and facts["Rollout"] == "1 (gradual, step 1/3 -> 2/3)"
    )
    advance = next(e for e in registry.audit_log(PIPELINE) if e.action == "rollout_advance")
    assert advance.details["ci_low"] is None and advance.details["p_value"] == 0.2


def test_rollback_live_ends_an_active_rollout_and_otherwise_rolls_the_champion_back(
    registry: Registry, notifier: Notifier, versions: list[int]
) -> None:
    registry.move_alias(
        PIPELINE, CHAMPION, 3, expected_current=1, by="ci", actual_user="ci", reason="second"
    )
    started = rs.start_rollout(registry, notifier, PIPELINE, 2, CANARY, actor=ACTOR, reason="go")
    with pytest.raises(rs.RolloutError, match="roll it back first"):
        rollback_live(registry, notifier, PIPELINE, to_version=1, actor=ACTOR, reason="x")
    ended = rollback_live(registry, notifier, PIPELINE, to_version=None, actor=ACTOR, reason="bad")
    assert isinstance(ended, rs.Rollout) and (ended.id, ended.status) == (started.id, "rolled_back")
    assert (_alias(registry, CHAMPION), _alias(registry, CHALLENGER)) == (3, None)
    move = rollback_live(registry, notifier, PIPELINE, to_version=None, actor=ACTOR, reason="b")
    assert (move.action, move.version, move.previous_version) == ("rollback", 1, 3)


@pytest.fixture
def pg_registry(postgres_database: str, tmp_path: Path) -> Iterator[Registry]:
    """PostgreSQL only: v1 (the champion), v2 and v3."""
    registry = Registry(platform_engine(postgres_database), tmp_path / "artifacts")
    for i in (1, 2, 3):
        _register(registry, i, "registered")
    with_champion(registry, 1, pipeline=PIPELINE)
    yield registry
    registry.engine.dispose()


@pytest.mark.postgres
def test_a_champion_move_waits_for_a_rollout_start_in_flight_then_is_refused(
    pg_registry: Registry,
) -> None:
    """The race the early check cannot see: a rollout start holds the champion's lock and has
    written its (uncommitted) rollout when a promotion passes that check. The promotion waits
    for the lock, then finds the rollout and changes nothing."""
    registry = pg_registry

    def start_in_flight(connection: sa.Connection) -> None:
        connection.execute(sa.insert(schema.rollouts).values(_rollout_row(challenger=2)))

    error = _while_holding_the_champion(
        registry,
        start_in_flight,
        lambda notifier: change_champion(
            registry, notifier, PIPELINE, 3, expected_current=1, actor=ACTOR, reason="gate"
        ),
    )
    assert isinstance(error, RolloutActiveError) and "is active" in str(error)
    assert _alias(registry, CHAMPION) == 1
    assert [m.version for m in registry.alias_history(PIPELINE)] == [1]


@pytest.mark.postgres
def test_a_rollout_start_waits_for_a_champion_move_in_flight_then_is_refused(
    pg_registry: Registry,
) -> None:
    """The other order: a promotion holds the lock and has moved the champion (uncommitted)
    when a rollout start passes its early check against the old champion."""
    registry = pg_registry

    def promotion_in_flight(connection: sa.Connection) -> None:
        registry.move_alias(
            PIPELINE, CHAMPION, 3, expected_current=1, by="ci", actual_user="ci", reason="gate",
            connection=connection,
        )  # fmt: skip

    error = _while_holding_the_champion(
        registry,
        promotion_in_flight,
        lambda notifier: rs.start_rollout(
            registry, notifier, PIPELINE, 2, CANARY, actor=ACTOR, reason="operator"
        ),
    )
    assert isinstance(error, rs.RolloutConflictError) and "moved while starting" in str(error)
    assert _rollout_rows(registry) == 0 and _alias(registry, CHALLENGER) is None
    assert _alias(registry, CHAMPION) == 3


def _while_holding_the_champion(
    registry: Registry,
    in_flight: Callable[[sa.Connection], None],
    racing: Callable[[Notifier], object],
) -> BaseException | object:
    """Run ``racing`` in a thread while a transaction holds the champion's lock with
    ``in_flight`` written; commit once the thread waits for that lock. Its result or error."""
    notifier = Notifier(registry.engine, [LogChannel()])
    outcome: list[BaseException | object] = []

    def target() -> None:
        try:
            outcome.append(racing(notifier))
        except BaseException as error:  # collected for the assertions
            outcome.append(error)

    thread = threading.Thread(target=target)
    with registry.transaction() as holding:
        registry.lock_alias(holding, PIPELINE, CHAMPION)
        in_flight(holding)
        thread.start()
        _wait_until_blocked(registry.engine, thread)
    thread.join()
    (result,) = outcome
    return result


def _rollout_row(challenger: int) -> dict[str, Any]:
    now = datetime(2026, 11, 27)
    return {
        "pipeline": PIPELINE,
        "champion_version": 1,
        "challenger_version": challenger,
        "strategy": "canary",
        "plan": CANARY.to_dict(),
        "salt": "held",
        "step": 0,
        "status": "active",
        "started_at": now,
        "step_started_at": now,
        "started_by": "alice",
        "reason": "in flight",
    }


def _wait_until_blocked(engine: sa.Engine, thread: threading.Thread) -> None:
    """Until a session of this database waits for a lock (the racing thread's), or the thread
    has ended without waiting: a condition, polled, never a sleep of a guessed length."""
    query = sa.text(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE NOT l.granted AND a.datname = current_database()"
    )
    with engine.connect() as connection:
        while thread.is_alive() and not connection.scalar(query):
            connection.rollback()  # a fresh snapshot of the lock table at each look
    assert thread.is_alive(), "the racing call finished without waiting for the lock"


def _damage(registry: Registry, version: int) -> None:
    record = registry.get_version(PIPELINE, version)
    path = registry.artifact_root / record.artifact_uri
    path.write_bytes(path.read_bytes() + b"!")


def test_a_challenger_whose_artifact_fails_is_neither_started_nor_promoted_nor_announced(
    registry: Registry, notifier: Notifier, versions: list[int]
) -> None:
    _damage(registry, 3)
    before = _written(registry)
    with pytest.raises(ArtifactError, match="demo v3"):
        rs.start_rollout(registry, notifier, PIPELINE, 3, CANARY, actor=ACTOR, reason="x")
    assert _written(registry) == before
    started = rs.start_rollout(registry, notifier, PIPELINE, 2, CANARY, actor=ACTOR, reason="go")
    _damage(registry, 2)  # after the start: the promotion checks again
    before = _written(registry)
    with pytest.raises(ArtifactError, match="demo v2"):
        rs.promote_challenger(registry, notifier, started, actor=ACTOR, reason="done")
    assert _written(registry) == before
    assert (_alias(registry, CHAMPION), rs.active_rollout(registry, PIPELINE).id) == (1, started.id)
