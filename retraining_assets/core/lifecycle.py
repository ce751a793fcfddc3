"""The model lifecycle: judge candidates (registered by core/candidates.py) and change the
champion safely.

Every change of the production model goes through here, whoever asks (the Dagster assets,
the approval/rollback jobs, the CLI): administrators are notified *before* the alias moves,
the move is one compare-and-set transaction with its history and audit rows, and "done" is
notified after. The decision itself is made only by ``PromotionPolicy`` (core/promotion.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.evaluation import (
    Comparison,
    compare_on_holdout,
    trivial_baseline,
)
from retraining_assets.core.notify import (
    Notifier,
    approval_required,
    promoted,
    promotion_pending,
    rolled_back,
)
from retraining_assets.core.promotion import Decision, Evidence, PromotionPolicy, Verdict
from retraining_assets.core.registry import (
    CHAMPION,
    REJECTED,
    Actor,
    AliasConflictError,
    AliasMove,
    ModelVersion,
    Registry,
    RegistryError,
    version_name,
)
from retraining_assets.core.rollout.records import Rollout, RolloutError, active_rollout
from retraining_assets.core.rollout.transitions import rollback_rollout
from retraining_assets.core.timestamps import iso_utc
from retraining_assets.core.training import (
    Split,
    TrainedModel,
)


class RolloutActiveError(RegistryError):
    """The champion cannot be moved directly while a rollout of the pipeline is active: the
    rollout's own promotion would then fail its compare-and-set."""


@dataclass(frozen=True)
class Judgement:
    """Every candidate and the champion on one holdout, and the gate's decision."""

    comparison: Comparison
    decision: Decision
    versions: dict[str, int]  # candidate name -> registered version

    @property
    def candidate_version(self) -> int:
        return self.versions[self.comparison.best_candidate]

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.to_dict(),
            "comparison": self.comparison.to_dict(),
            "versions": self.versions,
        }


def judge(
    candidates: dict[str, tuple[int, TrainedModel]],
    champion: tuple[int, TrainedModel] | None,
    split: Split,
    spec: DatasetSpec,
    policy: PromotionPolicy,
    primary_metric: str | None = None,
    *,
    seed: int = 0,
) -> Judgement:
    """Score the candidates and the champion on the same holdout; the policy decides."""
    models = {name: model for name, (_, model) in candidates.items()}
    comparison = compare_on_holdout(
        models,
        split.holdout,
        spec,
        primary_metric,
        champion=champion[1] if champion else None,
        seed=seed,
    )
    best = models[comparison.best_candidate]
    bootstrap = comparison.bootstrap
    evidence = Evidence(
        metric=comparison.primary_metric,
        higher_is_better=comparison.higher_is_better,
        candidate_version=candidates[comparison.best_candidate][0],
        candidate=comparison.candidate_value,
        champion_version=champion[0] if champion else None,
        champion=comparison.champion_value,
        lift=comparison.lift,
        ci_low=bootstrap.ci_low if bootstrap else None,
        ci_high=bootstrap.ci_high if bootstrap else None,
        baseline=None
        if champion
        else trivial_baseline(split.train, split.holdout, spec, best, comparison.primary_metric),
    )
    versions = {name: version for name, (version, _) in candidates.items()}
    return Judgement(comparison, policy.decide(evidence), versions)


def record_judgement(
    registry: Registry,
    notifier: Notifier,
    pipeline: str,
    judgement: Judgement,
    *,
    partition: str,
    run_id: str | None,
    actor: Actor,
    min_lift: float,
) -> None:
    """Audit the decision; a pending one becomes an approval request (and a message saying
    how to approve) that supersedes earlier pending ones, a rejected candidate is marked
    rejected. Promotion happens elsewhere."""
    decision = judgement.decision
    version = judgement.candidate_version
    details = {**judgement.to_dict(), "partition": partition, "run_id": run_id}
    # for the message only: the request below supersedes these, in its own transaction
    earlier = [a.version for a in registry.pending_approvals(pipeline) if a.version != version]
    with registry.transaction() as connection:
        entry = registry.audit(
            pipeline,
            "decision",
            version=version,
            by=actor.by,
            actual_user=actor.actual_user,
            reason=decision.reason,
            details=details,
            connection=connection,
        )
        registry.add_judgement(
            pipeline,
            audit_id=entry.id,
            run_id=run_id,
            versions=judgement.versions,
            decision=details["decision"],
            scores=details["comparison"]["scores"],
            at=entry.at,
            connection=connection,
        )
        if decision.verdict is Verdict.PENDING:
            registry.request_approval(
                pipeline,
                version,
                decision=decision.to_dict(),
                by=actor.by,
                actual_user=actor.actual_user,
                reason=decision.reason,
                connection=connection,
            )
        elif decision.verdict is Verdict.REJECT:
            for rejected in judgement.versions.values():
                registry.set_status(
                    pipeline,
                    rejected,
                    "rejected",
                    by=actor.by,
                    actual_user=actor.actual_user,
                    reason=decision.reason,
                    connection=connection,
                )
    if decision.verdict is Verdict.PENDING:
        evidence = decision.evidence
        notifier.notify(
            approval_required(
                pipeline=pipeline,
                candidate=version_name(version),
                champion=version_name(evidence.champion_version),
                metric=evidence.metric,
                lift=evidence.lift,
                min_lift=min_lift,
                supersedes=[version_name(v) for v in earlier],
                how=how_to_decide(pipeline, version),
                key=f"approval:{pipeline}:{version}",
            )
        )


CHANGES = ("approve", "reject", "rollback")  # what a person can do to the champion


def change_job_name(pipeline: str, action: str) -> str:
    """The Dagster job that carries out a person's ``action`` (approve, reject, rollback)."""
    return f"{pipeline}_{action}_job"


def how_to_decide(pipeline: str, version: int) -> dict[str, str]:
    """How a person approves or rejects pending ``version``: the CLI line, or the Dagster job
    launched with op config ``version``, ``user`` and ``reason``."""
    ways = {}
    for action in ("approve", "reject"):
        ways[f"{action}_cli"] = (
            f"retrain {action} {version} --pipeline {pipeline} --by USER --reason TEXT"
        )
        ways[f"{action}_job"] = (
            f"{change_job_name(pipeline, action)} with config "
            f"ops.{pipeline}_{action}.config: {{version: {version}, user: USER, reason: TEXT}}"
        )
    return ways


def decision_of_run(registry: Registry, pipeline: str, run_id: str) -> dict[str, Any] | None:
    """The decision ``model_evaluation`` recorded in run ``run_id`` (None if none)."""
    return registry.decision_of_run(pipeline, run_id)


def change_champion(
    registry: Registry,
    notifier: Notifier,
    pipeline: str,
    to_version: int,
    *,
    expected_current: int | None,
    actor: Actor,
    reason: str,
    action: str = "promote",
    metric: str | None = None,
    lift: float | None = None,
    approve: bool = False,
) -> AliasMove:
    """Check, notify, then move the champion alias by compare-and-set, then notify again.

    ``action`` is "promote" or "rollback"; ``approve`` resolves a pending approval in the same
    transaction as the move. Everything that can refuse the change runs first, under the
    champion's lock that the move keeps until it is done, so a refused change announces
    nothing: an unknown or rejected version, a target whose artifacts are missing or fail
    their signature (``ArtifactError``), a champion that is no longer ``expected_current``
    (``AliasConflictError``), an approval no longer pending, an active rollout
    (``RolloutActiveError``). Both notices name the move by its number in the champion's
    history, so a repeated move (v1 -> v2 -> v1 -> v2) is announced every time.
    """
    with registry.alias_lock(pipeline, CHAMPION):
        target = _check_change(registry, pipeline, to_version, expected_current, approve)
        number = registry.next_move_number(pipeline, CHAMPION)
        value = (target.metrics.get("valid") or {}).get(metric) if metric else None
        notifier.notify(
            promotion_pending(
                pipeline=pipeline,
                candidate=version_name(to_version),
                champion=version_name(expected_current),
                metric=metric or "-",
                lift=lift,
                decision=f"{action}: {reason}",
                candidate_value=value,
                key=f"pending:{pipeline}:champion#{number}:{action}:{expected_current}->{to_version}",
            )
        )
        with registry.transaction() as connection:
            # the database's own guards stay: a rollout start takes this row lock too
            registry.lock_alias(connection, pipeline, CHAMPION)
            _refuse_during_rollout(registry, pipeline, connection)
            who = {
                "expected_current": expected_current,
                "by": actor.by,
                "actual_user": actor.actual_user,
                "reason": reason,
                "connection": connection,
            }
            if approve:
                move = registry.approve_and_promote(pipeline, to_version, **who)
            elif action == "rollback":
                move = registry.rollback(pipeline, to_version, **who)
            else:
                move = registry.move_alias(pipeline, CHAMPION, to_version, action=action, **who)
    done = rolled_back if action == "rollback" else promoted
    extra = {"reason": reason} if action == "rollback" else {"metric": metric, "value": value}
    notifier.notify(
        done(
            pipeline=pipeline,
            version=version_name(to_version),
            previous=version_name(expected_current),
            by=actor.by,
            key=f"done:{pipeline}:champion#{number}:{action}:{move.previous_version}->{to_version}",
            **extra,
        )
    )
    return move


def _check_change(
    registry: Registry,
    pipeline: str,
    to_version: int,
    expected_current: int | None,
    approve: bool,
) -> ModelVersion:
    """Every refusal a champion change can meet, before anything is announced."""
    target = registry.get_version(pipeline, to_version)  # unknown versions stop here
    if target.status == REJECTED:
        raise RegistryError(f"{pipeline} v{to_version} was rejected; it cannot become champion")
    _refuse_during_rollout(registry, pipeline)
    current = registry.get_alias(pipeline, CHAMPION)
    found = current.version if current else None
    if found != expected_current:
        raise AliasConflictError(pipeline, CHAMPION, expected_current, found)
    if approve:
        approval = registry.get_approval(pipeline, to_version)
        if approval is None or approval.status != "pending":
            state = approval.status if approval else "never requested"
            raise RegistryError(
                f"pipeline '{pipeline}' v{to_version} has no pending approval ({state})"
            )
    registry.verify_artifacts(pipeline, to_version)  # signed, inside the root, not corrupt
    return target


def _refuse_during_rollout(
    registry: Registry, pipeline: str, connection: sa.Connection | None = None
) -> None:
    active = active_rollout(registry, pipeline, connection=connection)
    if active is not None:
        raise RolloutActiveError(
            f"rollout {active.id} of '{pipeline}' (challenger v{active.challenger_version}) is "
            "active and the champion changes only through it: end it first (`retrain rollout "
            "stop` or `retrain rollback`), then try again"
        )


def previous_champion(registry: Registry, pipeline: str) -> int:
    """The champion before the current one (what ``rollback`` without ``--to`` restores).

    Refused when the current champion itself came back by a rollback: the version before it
    is the one somebody just took out of production (two operators rolling back the same bad
    model must not toggle it back in). Name it with ``--to`` to restore it deliberately."""
    current = registry.get_alias(pipeline, CHAMPION)
    if current is None:
        raise RegistryError(f"pipeline '{pipeline}' has no champion to roll back")
    for move in reversed(registry.alias_history(pipeline, CHAMPION)):
        if move.version != current.version or move.previous_version is None:
            continue
        if move.action == "rollback":
            raise RegistryError(
                f"v{current.version} of '{pipeline}' is champion because {move.by} rolled "
                f"v{move.previous_version} back at {move.at:%Y-%m-%d %H:%M:%S} UTC; nothing "
                f"changed. Name the version to restore: --to {move.previous_version} brings "
                "it back, an older one rolls back further"
            )
        return move.previous_version
    raise RegistryError(f"pipeline '{pipeline}': no champion before v{current.version}")


def approve(
    registry: Registry,
    notifier: Notifier,
    pipeline: str,
    version: int,
    *,
    actor: Actor,
    reason: str,
) -> AliasMove:
    """A person approves a pending candidate: it becomes the champion (notified before and
    after; refused, with nothing changed or announced, if the champion moved since the
    evaluation or the candidate's artifacts fail their signature)."""
    approval = registry.get_approval(pipeline, version)
    if approval is None or approval.status != "pending":
        state = approval.status if approval else "never requested"
        raise RegistryError(f"pipeline '{pipeline}' v{version} has no pending approval ({state})")
    decision = approval.decision
    return change_champion(
        registry,
        notifier,
        pipeline,
        version,
        expected_current=decision.get("champion_version"),
        actor=actor,
        reason=reason,
        metric=decision.get("metric"),
        lift=decision.get("lift"),
        approve=True,
    )


def reject(registry: Registry, pipeline: str, version: int, *, actor: Actor, reason: str) -> None:
    """A person rejects a pending candidate: the champion stays, the version is rejected."""
    registry.resolve_approval(
        pipeline, version, approved=False, by=actor.by, actual_user=actor.actual_user, reason=reason
    )


def rollback(
    registry: Registry,
    notifier: Notifier,
    pipeline: str,
    *,
    to_version: int | None,
    actor: Actor,
    reason: str,
) -> AliasMove:
    """Put an earlier version back in production (default: the champion before the current
    one); its own drift reference comes back with it."""
    current = registry.get_alias(pipeline, CHAMPION)
    if current is None:
        raise RegistryError(f"pipeline '{pipeline}' has no champion to roll back")
    target = to_version if to_version is not None else previous_champion(registry, pipeline)
    if target == current.version:
        raise RegistryError(f"v{target} already is the champion of '{pipeline}'")
    return change_champion(
        registry,
        notifier,
        pipeline,
        target,
        expected_current=current.version,
        actor=actor,
        reason=reason,
        action="rollback",
    )


def rollback_live(
    registry: Registry,
    notifier: Notifier,
    pipeline: str,
    *,
    to_version: int | None,
    actor: Actor,
    reason: str,
) -> Rollout | AliasMove:
    """What "roll back" means now, for ``retrain rollback`` and the rollback job alike.

    While a rollout is active, roll *it* back: all traffic to the champion (which stays), the
    challenger cleared, audited and notified first; the ended ``Rollout`` is returned. A
    ``to_version`` is then refused (one change at a time: roll the rollout back, then the
    champion). Without a rollout, put an earlier champion back (:func:`rollback`).
    """
    active = active_rollout(registry, pipeline)
    if active is None:
        return rollback(
            registry, notifier, pipeline, to_version=to_version, actor=actor, reason=reason
        )
    if to_version is not None:
        raise RolloutError(
            f"rollout {active.id} of '{pipeline}' (v{active.challenger_version}) is active: "
            f"roll it back first (without a version), then the champion to v{to_version}"
        )
    return rollback_rollout(registry, notifier, active, actor=actor, reason=reason)


def status(registry: Registry, pipeline: str, *, audit_limit: int = 50) -> dict[str, Any]:
    """The champion, pending approvals, alias history and recent audit, JSON-ready."""
    champion = registry.get_alias(pipeline, CHAMPION)
    history = registry.alias_history(pipeline)
    promoted_at = next(
        (
            m.at
            for m in reversed(history)
            if m.alias == CHAMPION and champion and m.version == champion.version
        ),
        None,
    )
    return {
        "pipeline": pipeline,
        "champion": None
        if champion is None
        else {
            "version": champion.version,
            "family": champion.family,
            "metrics": champion.metrics,
            "promoted_at": iso_utc(promoted_at),
            "trained_on": [iso_utc(champion.train_start), iso_utc(champion.train_end)],
        },
        "pending_approvals": [
            {k: v for k, v in a.to_dict().items() if k in ("version", "requested_at", "decision")}
            for a in registry.pending_approvals(pipeline)
        ],
        "alias_history": [
            {
                k: m.to_dict()[k]
                for k in ("alias", "version", "previous_version", "at", "by", "reason", "action")
            }
            for m in history
        ],
        "audit": [entry.to_dict() for entry in registry.audit_log(pipeline, limit=audit_limit)],
    }


def evaluation_baseline(registry: Registry, pipeline: str, version: int) -> dict[str, Any] | None:
    """The holdout metrics ``version`` had when it was judged (what live metrics compare to)."""
    return registry.judged_scores(pipeline, version)
