"""core/lifecycle.py: judging candidates, recording the judgement (audit row and indexed
judgement rows in one transaction), and moving the champion, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from retraining_assets.core import schema
from retraining_assets.core.candidates import load_model
from retraining_assets.core.database import _alembic_config, make_engine, upgrade
from retraining_assets.core.demo import SPEC
from retraining_assets.core.lifecycle import (
    Judgement,
    change_champion,
    decision_of_run,
    evaluation_baseline,
    judge,
    record_judgement,
)
from retraining_assets.core.notify import LogChannel, Notifier
from retraining_assets.core.promotion import PromotionPolicy, Verdict
from retraining_assets.core.registry import CHAMPION, Actor, AliasConflictError, Registry
from retraining_assets_tests.conftest import SMALL_STREAM, trained_version, training_window

ACTOR = Actor(by="alice", actual_user="test")


@pytest.fixture
def notifier(registry: Registry) -> Notifier:
    return Notifier(registry.engine, [LogChannel()])


def _judged(registry: Registry, notifier: Notifier, run_id: str, **policy: float) -> Judgement:
    """Two real random forests judged on the same holdout (no champion yet), recorded."""
    versions = {
        "forest": trained_version(registry, seed=0),
        "other": trained_version(registry, seed=1),
    }
    models = {name: (v, load_model(registry, "demo", v)) for name, v in versions.items()}
    split = training_window(SMALL_STREAM).split
    judgement = judge(models, None, split, SPEC, PromotionPolicy(**policy))
    record_judgement(
        registry, notifier, "demo", judgement,
        partition="2024-01-01", run_id=run_id, actor=ACTOR, min_lift=0.05,
    )  # fmt: skip
    return judgement


def test_a_judgement_is_found_by_its_run_and_each_candidate_by_its_version(
    registry: Registry, notifier: Notifier
) -> None:
    judgement = _judged(registry, notifier, "run-a")
    assert decision_of_run(registry, "demo", "run-a") == judgement.decision.to_dict()
    assert decision_of_run(registry, "demo", "run-b") is None
    assert decision_of_run(registry, "loans", "run-a") is None  # runs are per pipeline
    scores = judgement.comparison.to_dict()["scores"]
    for name, version in judgement.versions.items():  # the best and the other candidate
        assert evaluation_baseline(registry, "demo", version) == pytest.approx(scores[name])
    assert evaluation_baseline(registry, "demo", 99) is None
    # the rows point at the audit row written in the same transaction
    (entry,) = [e for e in registry.audit_log("demo") if e.action == "decision"]
    with registry.engine.connect() as connection:
        rows = connection.execute(sa.select(schema.judgements)).all()
    assert {row.audit_id for row in rows} == {entry.id}
    assert {row.version: row.model for row in rows} == {v: n for n, v in judgement.versions.items()}


def test_the_newest_judgement_of_a_run_wins(registry: Registry, notifier: Notifier) -> None:
    _judged(registry, notifier, "run-a")
    again = _judged(registry, notifier, "run-a")
    assert (
        decision_of_run(registry, "demo", "run-a")["candidate_version"] == again.candidate_version
    )


def test_the_lookups_are_indexed_queries(registry: Registry, notifier: Notifier) -> None:
    judgement = _judged(registry, notifier, "run-a")
    (entry,) = [e for e in registry.audit_log("demo") if e.action == "decision"]
    for run in range(200):  # a year of daily judgements of four candidates each
        registry.add_judgement(
            "demo", audit_id=entry.id, run_id=f"run-{run}", at=entry.at,
            versions={f"m{i}": 100 + 4 * run + i for i in range(4)}, decision={}, scores={},
        )  # fmt: skip
    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if "FROM judgements" in statement:
            statements.append((statement, parameters))

    sa.event.listen(registry.engine, "before_cursor_execute", capture)
    try:
        assert decision_of_run(registry, "demo", "run-a") == judgement.decision.to_dict()
        assert evaluation_baseline(registry, "demo", judgement.candidate_version) is not None
    finally:
        sa.event.remove(registry.engine, "before_cursor_execute", capture)
    sqlite = registry.engine.dialect.name == "sqlite"
    plans = []
    with registry.engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE judgements")
        for statement, parameters in statements:
            explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
            rows = connection.exec_driver_sql(explain + statement, parameters).all()
            plans.append(" ".join(str(value) for row in rows for value in row))
    assert len(plans) == 2
    assert "ix_judgements_run_id" in plans[0], plans[0]
    assert "ix_judgements_pipeline_version" in plans[1], plans[1]


def test_a_rejected_judgement_rejects_every_candidate(
    registry: Registry, notifier: Notifier
) -> None:
    champion = trained_version(registry, seed=5)
    change_champion(
        registry, notifier, "demo", champion, expected_current=None, actor=ACTOR, reason="first"
    )
    versions = {"forest": trained_version(registry, seed=6)}
    models = {name: (v, load_model(registry, "demo", v)) for name, v in versions.items()}
    split = training_window(SMALL_STREAM).split
    judgement = judge(
        models, (champion, load_model(registry, "demo", champion)), split, SPEC,
        PromotionPolicy(min_lift=100.0),
    )  # fmt: skip
    record_judgement(
        registry, notifier, "demo", judgement,
        partition="2024-01-01", run_id="run-r", actor=ACTOR, min_lift=100.0,
    )  # fmt: skip
    verdict = judgement.decision.verdict
    status = registry.get_version("demo", versions["forest"]).status
    if verdict is Verdict.REJECT:
        assert status == "rejected"
    else:  # a gain below the bar: a person is asked
        assert verdict is Verdict.PENDING
        assert [a.version for a in registry.pending_approvals("demo")] == [versions["forest"]]
    assert registry.get_alias("demo", CHAMPION).version == champion


def test_a_stale_champion_change_is_refused_and_nothing_is_written(
    registry: Registry, notifier: Notifier
) -> None:
    first, second = trained_version(registry, seed=0), trained_version(registry, seed=1)
    change_champion(
        registry, notifier, "demo", first, expected_current=None, actor=ACTOR, reason="first"
    )
    audited = len(registry.audit_log("demo"))
    with pytest.raises(AliasConflictError):
        change_champion(
            registry, notifier, "demo", second, expected_current=None, actor=ACTOR, reason="stale"
        )
    assert registry.get_alias("demo", CHAMPION).version == first
    assert len(registry.audit_log("demo")) == audited


# --- migration 0007 backfills the judgements of the audit log ---------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A platform database at migration 0006, before the judgements table."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
    engine = make_engine(url)
    command.upgrade(_alembic_config(engine), "0006")
    yield engine


def test_migration_0007_backfills_the_judgements_of_the_audit_log(
    old_database: sa.Engine, tmp_path: Path
) -> None:
    audit = sa.Table("audit_log", sa.MetaData(), autoload_with=old_database)
    details = {
        "decision": {"verdict": "promote", "candidate_version": 2},
        "comparison": {"scores": {"forest": {"accuracy": 0.8}, "other": {"accuracy": 0.7}}},
        "versions": {"forest": 2, "other": 3},
        "partition": "2024-01-01",
        "run_id": "old-run",
    }
    entry = {"pipeline": "demo", "at": datetime(2024, 1, 2), "version": 2, "claimed_by": "a",
             "actual_user": "a", "reason": "r"}  # fmt: skip
    with old_database.begin() as connection:
        connection.execute(sa.insert(audit), [{**entry, "action": "register", "details": None}])
        connection.execute(sa.insert(audit), [{**entry, "action": "decision", "details": details}])
    upgrade(old_database)
    registry = Registry(old_database, tmp_path / "artifacts")
    assert decision_of_run(registry, "demo", "old-run") == details["decision"]
    assert evaluation_baseline(registry, "demo", 3) == {"accuracy": 0.7}
    with old_database.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(schema.judgements)).scalar()
            == 2
        )
