"""Rollout state in the platform database: which challenger gets how much traffic, and since when.

Plain Python, no Dagster. Every change is one registry transaction with a compare-and-set on
the rollout row (id, step, status ``active``) and on the aliases it moves, with audit rows; the
administrators are notified *before* the traffic changes (a ``Rollout ...:`` outbox row is
written first). What to do next is decided elsewhere (``core.rollout.decide``); these
functions carry it out (``carry_out``).

A finished rollout moves the champion in the same transaction as the rollout row and the
challenger alias (``Rollout promoted:`` before, ``Promoted:`` after, as any champion move):
calling ``lifecycle.change_champion`` itself would commit the champion move on its own. The
records and their queries live in ``records``; ``lifecycle.rollback_live`` decides whether
"roll back" means this rollout or an earlier champion.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from retraining_assets.core import schema as tables
from retraining_assets.core.notify import EventType, Notifier, promoted, rollout_change
from retraining_assets.core.registry import (
    CHALLENGER,
    CHAMPION,
    REJECTED,
    Actor,
    AliasMove,
    Registry,
    version_name,
)
from retraining_assets.core.rollout.decision import Action, RolloutDecision
from retraining_assets.core.rollout.plan import RolloutPlan
from retraining_assets.core.rollout.records import (
    ACTIVE,
    ENDINGS,
    HALTED,
    MAX_SALT_LENGTH,
    PROMOTED,
    ROLLED_BACK,
    STOPPED,
    Rollout,
    RolloutConflictError,
    RolloutError,
    active_rollout,
    get_rollout,
)
from retraining_assets.core.timestamps import utc_now

# The records and their queries are part of this module's interface: callers change a rollout
# and read it through one import.
__all__ = [
    "ACTIVE",
    "ENDINGS",
    "HALTED",
    "PROMOTED",
    "ROLLED_BACK",
    "STOPPED",
    "Rollout",
    "RolloutConflictError",
    "RolloutError",
    "RolloutEvidence",
    "active_rollout",
    "advance",
    "carry_out",
    "decision_evidence",
    "get_rollout",
    "halt",
    "promote_challenger",
    "rollback_rollout",
    "start_rollout",
    "stop",
]

_ENDING_EVENTS = {
    ROLLED_BACK: EventType.ROLLOUT_ROLLED_BACK,
    HALTED: EventType.ROLLOUT_HALTED,
    STOPPED: EventType.ROLLOUT_STOPPED,
}
RolloutEvidence = Mapping[str, float | int | None]
"""The figures behind a rollout change (a decision's), as they go into the audit log."""


# --- start -----------------------------------------------------------------------------------


def start_rollout(
    registry: Registry,
    notifier: Notifier,
    pipeline: str,
    challenger_version: int,
    plan: RolloutPlan,
    *,
    actor: Actor,
    reason: str,
    expected_champion: int | None = None,
    salt: str | None = None,
) -> Rollout:
    """Start rolling ``challenger_version`` out per ``plan``: notify, then move the challenger
    alias and record the rollout in one transaction. Refused, with nothing written, for an
    unknown, rejected or champion version, while another rollout is active, or when the
    champion is not ``expected_champion`` (if given: the one the challenger was judged
    against).

    ``salt`` seeds the router's hash. The default, new for every rollout, keeps experiments
    independent; give one only to reproduce an assignment (elsewhere, or in a test)."""
    if salt is not None and not 0 < len(salt) <= MAX_SALT_LENGTH:
        raise RolloutError(f"a salt has 1 to {MAX_SALT_LENGTH} characters, got {len(salt)}")
    # every check before the notice, under the lock a champion change takes to check for an
    # active rollout: one of the two waits, and neither announces what the other refuses
    with registry.alias_lock(pipeline, CHAMPION):
        champion, previous = _check_start(registry, pipeline, challenger_version)
        if expected_champion is not None and champion != expected_champion:
            raise RolloutConflictError(
                f"the champion of '{pipeline}' is v{champion}, not v{expected_champion} as when "
                f"v{challenger_version} was judged; nothing changed"
            )
        registry.verify_artifacts(pipeline, challenger_version)  # it will serve: signed, intact
        salt = salt or f"{pipeline}:v{challenger_version}:{uuid.uuid4().hex[:12]}"
        notifier.notify(
            rollout_change(
                EventType.ROLLOUT_STARTED,
                pipeline=pipeline,
                rollout_id=None,  # the row, and its id, are written after the message
                strategy=str(plan.strategy),
                challenger=version_name(challenger_version),  # type: ignore[arg-type]
                champion=version_name(champion),  # type: ignore[arg-type]
                share_from=0.0,
                share_to=plan.share_at(0),
                step=f"1/{len(plan.steps)}",
                by=actor.by,
                reason=reason,
                key=f"rollout:{salt}:start",
            )
        )
        with registry.transaction() as connection:
            # a champion move takes the same lock before it checks for an active rollout
            registry.lock_alias(connection, pipeline, CHAMPION)
            now = _check_start(registry, pipeline, challenger_version, connection)
            if now != (champion, previous):
                raise RolloutConflictError(
                    f"the champion or challenger of '{pipeline}' moved while starting; "
                    "nothing changed"
                )
            rollout_id = _insert(
                connection, pipeline, champion, challenger_version, plan, salt, actor, reason
            )
            registry.move_alias(
                pipeline,
                CHALLENGER,
                challenger_version,
                expected_current=previous,
                action="challenger_set",
                details={"rollout_id": rollout_id},
                connection=connection,
                **_who(actor, reason),
            )
            _audit(
                registry,
                connection,
                "rollout_start",
                rollout_id,
                pipeline,
                challenger_version,
                actor,
                reason,
                {"plan": plan.to_dict(), "salt": salt, "champion": champion},
            )
            return get_rollout(registry, rollout_id, connection=connection)


def _check_start(
    registry: Registry,
    pipeline: str,
    challenger: int,
    connection: sa.Connection | None = None,
) -> tuple[int, int | None]:
    """Refuse a start that cannot happen; the champion and the challenger alias's version."""
    target = registry.get_version(pipeline, challenger, connection=connection)
    if target.status == REJECTED:
        raise RolloutError(f"{pipeline} v{challenger} was rejected; it cannot be rolled out")
    champion = registry.get_alias(pipeline, CHAMPION, connection=connection)
    if champion is None:
        raise RolloutError(
            f"pipeline '{pipeline}' has no champion to roll v{challenger} out against"
        )
    if champion.version == challenger:
        raise RolloutError(f"{pipeline} v{challenger} already is the champion")
    running = active_rollout(registry, pipeline, connection=connection)
    if running is not None:
        raise RolloutError(
            f"pipeline '{pipeline}' already has an active rollout (id {running.id}, "
            f"v{running.challenger_version}); stop or promote it first"
        )
    current = registry.get_alias(pipeline, CHALLENGER, connection=connection)
    return champion.version, None if current is None else current.version


def _insert(
    connection: sa.Connection,
    pipeline: str,
    champion: int,
    challenger: int,
    plan: RolloutPlan,
    salt: str,
    actor: Actor,
    reason: str,
) -> int:
    now = utc_now()
    row = {
        "pipeline": pipeline,
        "champion_version": champion,
        "challenger_version": challenger,
        "strategy": str(plan.strategy),
        "plan": plan.to_dict(),
        "salt": salt,
        "step": 0,
        "status": ACTIVE,
        "started_at": now,
        "step_started_at": now,
        "started_by": actor.by,
        "reason": reason,
    }
    try:
        return connection.execute(sa.insert(tables.rollouts).values(row)).inserted_primary_key[0]
    except sa.exc.IntegrityError:  # PostgreSQL: a racing start committed first
        raise RolloutConflictError(
            f"pipeline '{pipeline}' already has an active rollout (started concurrently)"
        ) from None


# --- changes of an active rollout ------------------------------------------------------------


def advance(
    registry: Registry,
    notifier: Notifier,
    rollout: Rollout,
    *,
    actor: Actor,
    reason: str,
    evidence: RolloutEvidence | None = None,
) -> Rollout:
    """Move to the plan's next step (more traffic for the challenger), if the rollout is still
    active at ``rollout.step``; notified before."""
    if rollout.step >= rollout.plan.final_step:
        raise RolloutError(
            f"rollout {rollout.id} of '{rollout.pipeline}' is at its final step; promote it"
        )
    to_step = rollout.step + 1
    share = rollout.plan.share_at(to_step)
    _notify(
        notifier,
        EventType.ROLLOUT_STEP,
        rollout,
        share,
        actor,
        reason,
        evidence,
        f"advance:{to_step}",
        step=to_step,
    )
    with registry.transaction() as connection:
        _swap(connection, rollout, step=to_step, step_started_at=utc_now())
        _audit(
            registry,
            connection,
            "rollout_advance",
            rollout.id,
            rollout.pipeline,
            rollout.challenger_version,
            actor,
            reason,
            {"from_step": rollout.step, "to_step": to_step, "share": share, **_numbers(evidence)},
        )
        return get_rollout(registry, rollout.id, connection=connection)


def promote_challenger(
    registry: Registry,
    notifier: Notifier,
    rollout: Rollout,
    *,
    actor: Actor,
    reason: str,
    evidence: RolloutEvidence | None = None,
) -> Rollout:
    """Promote the challenger: in one transaction the champion moves to it (compare-and-set on
    the rollout's champion), the challenger alias is cleared and the rollout is ``promoted``."""
    if rollout.step != rollout.plan.final_step:
        raise RolloutError(
            f"rollout {rollout.id} of '{rollout.pipeline}' is at step {rollout.step}, not its "
            f"final step {rollout.plan.final_step}; advance it first"
        )
    with registry.alias_lock(rollout.pipeline, CHAMPION):
        # refused before it is announced: the challenger must still load where it will serve
        registry.verify_artifacts(rollout.pipeline, rollout.challenger_version)
        _notify(
            notifier, EventType.ROLLOUT_PROMOTED, rollout, 1.0, actor, reason, evidence, "promote"
        )
        ended, move = _promote(registry, rollout, actor, reason, evidence)
    notifier.notify(
        promoted(
            pipeline=rollout.pipeline,
            version=version_name(rollout.challenger_version),
            previous=version_name(rollout.champion_version),
            by=actor.by,
            key=f"rollout:{rollout.salt}:promoted:{move.id}",
        )
    )
    return ended


def _promote(
    registry: Registry,
    rollout: Rollout,
    actor: Actor,
    reason: str,
    evidence: RolloutEvidence | None,
) -> tuple[Rollout, AliasMove]:
    with registry.transaction() as connection:
        _swap(connection, rollout, status=PROMOTED, ended_at=utc_now())
        move = registry.move_alias(
            rollout.pipeline,
            CHAMPION,
            rollout.challenger_version,
            expected_current=rollout.champion_version,
            action="promote",
            details={"rollout_id": rollout.id},
            connection=connection,
            **_who(actor, reason),
        )
        _clear_challenger(registry, connection, rollout, actor, reason)
        _audit(
            registry,
            connection,
            "rollout_promote",
            rollout.id,
            rollout.pipeline,
            rollout.challenger_version,
            actor,
            reason,
            {"step": rollout.step, **_numbers(evidence)},
        )
        return get_rollout(registry, rollout.id, connection=connection), move


def rollback_rollout(
    registry: Registry,
    notifier: Notifier,
    rollout: Rollout,
    *,
    actor: Actor,
    reason: str,
    evidence: RolloutEvidence | None = None,
) -> Rollout:
    """End the rollout as ``rolled_back``: all traffic back to the champion."""
    return _end(registry, notifier, rollout, ROLLED_BACK, actor, reason, evidence)


def halt(
    registry: Registry,
    notifier: Notifier,
    rollout: Rollout,
    *,
    actor: Actor,
    reason: str,
    evidence: RolloutEvidence | None = None,
) -> Rollout:
    """End the rollout as ``halted`` (e.g. sample ratio mismatch): traffic back to the champion."""
    return _end(registry, notifier, rollout, HALTED, actor, reason, evidence)


def stop(
    registry: Registry, notifier: Notifier, rollout: Rollout, *, actor: Actor, reason: str
) -> Rollout:
    """A person ends the rollout (``stopped``): traffic back to the champion."""
    return _end(registry, notifier, rollout, STOPPED, actor, reason, None)


def _end(
    registry: Registry,
    notifier: Notifier,
    rollout: Rollout,
    status: str,
    actor: Actor,
    reason: str,
    evidence: RolloutEvidence | None,
) -> Rollout:
    """Clear the challenger and close the rollout with ``status``; notified before."""
    _notify(notifier, _ENDING_EVENTS[status], rollout, 0.0, actor, reason, evidence, status)
    with registry.transaction() as connection:
        _swap(connection, rollout, status=status, ended_at=utc_now())
        _clear_challenger(registry, connection, rollout, actor, reason)
        _audit(
            registry,
            connection,
            f"rollout_{status}",
            rollout.id,
            rollout.pipeline,
            rollout.challenger_version,
            actor,
            reason,
            {"step": rollout.step, **_numbers(evidence)},
        )
        return get_rollout(registry, rollout.id, connection=connection)


# --- acting on a decision, and rolling back what is live -------------------------------------

_CHANGES = {
    Action.ADVANCE: advance,
    Action.PROMOTE: promote_challenger,
    Action.ROLLBACK: rollback_rollout,
    Action.HALT: halt,
}


def decision_evidence(decision: RolloutDecision) -> dict[str, float | int | None]:
    """The numbers behind a decision that messages and the audit log carry."""
    found: dict[str, float | int | None] = {"srm_p_value": decision.srm.p_value}
    if decision.comparison is not None:
        c = decision.comparison
        found |= {"effect": c.effect, "ci_low": c.ci_low, "ci_high": c.ci_high}
        found |= {"p_value": c.p_value, "n_champion": c.n_champion, "n_challenger": c.n_challenger}
    return found


def carry_out(
    registry: Registry,
    notifier: Notifier,
    rollout: Rollout,
    decision: RolloutDecision,
    *,
    actor: Actor,
) -> Rollout | None:
    """Apply ``decide()``'s decision for ``rollout``: advance, promote, roll back or
    halt; None for ``continue``. A decision made at another step than the rollout's, or a
    rollout that moved since it was read, raises ``RolloutConflictError`` with nothing
    changed (a stale decision is never applied)."""
    if decision.action is Action.CONTINUE:
        return None
    # checked before the message goes out (the compare-and-set still guards the race)
    now = get_rollout(registry, rollout.id)
    if (now.status, now.step) != (ACTIVE, decision.step):
        raise RolloutConflictError(
            f"the decision ({decision.action}) was made at step {decision.step + 1}; rollout "
            f"{rollout.id} of '{rollout.pipeline}' is now {now.status} at step {now.step + 1}. "
            "Nothing changed."
        )
    change = _CHANGES[decision.action]
    return change(
        registry,
        notifier,
        rollout,
        actor=actor,
        reason=decision.reason,
        evidence=decision_evidence(decision),
    )


# --- helpers ---------------------------------------------------------------------------------


def _swap(connection: sa.Connection, rollout: Rollout, **values: Any) -> None:
    """Update the rollout row only if it is still active at ``rollout.step``."""
    changed = connection.execute(
        sa.update(tables.rollouts)
        .where(
            tables.rollouts.c.id == rollout.id,
            tables.rollouts.c.status == ACTIVE,
            tables.rollouts.c.step == rollout.step,
        )
        .values(**values)
    ).rowcount
    if changed != 1:
        raise RolloutConflictError(
            f"rollout {rollout.id} of '{rollout.pipeline}' is no longer active at step "
            f"{rollout.step}; another run changed it. Nothing was changed."
        )


def _clear_challenger(
    registry: Registry, connection: sa.Connection, rollout: Rollout, actor: Actor, reason: str
) -> None:
    registry.clear_alias(
        rollout.pipeline,
        CHALLENGER,
        expected_current=rollout.challenger_version,
        action="rollout_end",
        details={"rollout_id": rollout.id},
        connection=connection,
        **_who(actor, reason),
    )


def _notify(
    notifier: Notifier,
    event: EventType,
    rollout: Rollout,
    share_to: float,
    actor: Actor,
    reason: str,
    evidence: RolloutEvidence | None,
    suffix: str,
    *,
    step: int | None = None,
) -> None:
    """The ``Rollout ...:`` message, written to the outbox before the traffic changes."""
    steps = len(rollout.plan.steps)
    shown = f"{rollout.step + 1}/{steps}"
    shown += f" -> {step + 1}/{steps}" if step is not None else ""
    notifier.notify(
        rollout_change(
            event,
            pipeline=rollout.pipeline,
            rollout_id=rollout.id,
            strategy=str(rollout.plan.strategy),
            challenger=version_name(rollout.challenger_version),  # type: ignore[arg-type]
            champion=version_name(rollout.champion_version),  # type: ignore[arg-type]
            share_from=rollout.share,
            share_to=share_to,
            step=shown,
            by=actor.by,
            reason=reason,
            evidence=evidence,
            key=f"rollout:{rollout.salt}:{suffix}",
        )
    )


def _numbers(evidence: RolloutEvidence | None) -> dict[str, Any]:
    """Evidence for the audit log: JSON has no infinity (an inconclusive interval)."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v
        for k, v in (evidence or {}).items()
    }


def _audit(
    registry: Registry,
    connection: sa.Connection,
    action: str,
    rollout_id: int,
    pipeline: str,
    version: int,
    actor: Actor,
    reason: str,
    details: dict[str, Any],
) -> None:
    registry.audit(
        pipeline,
        action,
        version=version,
        details={"rollout_id": rollout_id, **details},
        connection=connection,
        **_who(actor, reason),
    )


def _who(actor: Actor, reason: str) -> dict[str, str]:
    return {"by": actor.by, "actual_user": actor.actual_user, "reason": reason}
