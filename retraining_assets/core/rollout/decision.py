"""The rollout decision: the one place continue / advance / promote / rollback / halt is
decided, from a plan, a step and the arms' summaries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from retraining_assets.core.rollout.plan import RolloutPlan, _hours
from retraining_assets.core.rollout.stats import (
    SRM_P_THRESHOLD,
    Comparison,
    SrmResult,
    VariantSummary,
    compare,
    srm_check,
)


class Action(StrEnum):
    CONTINUE = "continue"
    ADVANCE = "advance"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    HALT = "halt"


@dataclass(frozen=True)
class RolloutDecision:
    """What to do now, and the numbers behind it.

    ``share`` is the challenger's traffic share to serve after acting on the decision (0 after
    a rollback or halt, 1 after a promotion). ``improvement`` is the effect signed so that
    positive means the challenger is better in the metric's good direction.
    """

    action: Action
    reason: str
    step: int
    next_step: int | None
    share: float
    samples: int
    elapsed_hours: float
    srm: SrmResult
    comparison: Comparison | None
    improvement: float | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["action"] = str(self.action)
        out["srm"] = {**asdict(self.srm), "halt": self.srm.halt}
        out["comparison"] = self.comparison.to_dict() if self.comparison else None
        return out


def decide(
    plan: RolloutPlan,
    step: int,
    *,
    elapsed: timedelta | float,
    champion: VariantSummary,
    challenger: VariantSummary,
    assignments: Mapping[str, int] | None = None,
) -> RolloutDecision:
    """The rollout decision at ``step`` after ``elapsed`` (timedelta or hours) on that step.

    ``champion``/``challenger`` summarise the primary metric's outcomes and ``assignments``
    counts routed entities, both *since the step began* (the SRM check compares them with this
    step's weights, and the sequential test restarts with each step).

    In order: ``halt`` when the assignment counts (default: the summaries' ``n``) fail the SRM
    check; ``rollback`` when the challenger is significantly worse on the primary metric;
    ``continue`` while the step's minimum duration or sample is not reached; ``advance`` to
    the next step; at the final step ``promote`` per ``plan.promote_rule``. With a rule
    ``"better"`` and no winner: ``rollback`` once ``max_samples`` is reached, else
    ``continue``. A fixed-horizon test (``sequential=False``) is only evaluated once the
    step's minimum sample is reached, because peeking at it inflates false alarms; mSPRT is
    evaluated at every look.
    """
    share = plan.share_at(step)
    counts = assignments or {plan.champion: champion.n, plan.challenger: challenger.n}
    srm = srm_check(counts, plan.weights_at(step))
    samples = min(s.n for s, w in ((champion, 1 - share), (challenger, share)) if w > 0)
    hours = _hours(elapsed)
    comparison = None
    if not srm.halt and (plan.sequential or samples >= plan.steps[step].min_samples):
        comparison = compare(
            champion,
            challenger,
            metric=plan.metric,
            sequential=plan.sequential,
            alpha=plan.alpha,
            tau=plan.tau,
        )
    improvement = None
    if comparison is not None:
        improvement = comparison.effect if plan.higher_is_better else -comparison.effect
    action, reason = _choose(plan, step, srm, comparison, improvement, samples, hours)
    to_step = step + 1 if action is Action.ADVANCE else None
    new_share = {Action.ROLLBACK: 0.0, Action.HALT: 0.0, Action.PROMOTE: 1.0}.get(action, share)
    return RolloutDecision(
        action=action,
        reason=reason,
        step=step,
        next_step=to_step,
        share=plan.share_at(to_step) if to_step is not None else new_share,
        samples=samples,
        elapsed_hours=hours,
        srm=srm,
        comparison=comparison,
        improvement=improvement,
    )


def _choose(
    plan: RolloutPlan,
    step: int,
    srm: SrmResult,
    comparison: Comparison | None,
    improvement: float | None,
    samples: int,
    hours: float,
) -> tuple[Action, str]:
    """The decision rule of :func:`decide`, in priority order."""
    if srm.halt:
        return Action.HALT, f"sample ratio mismatch: p = {srm.p_value:.3g} < {SRM_P_THRESHOLD}"
    significant = comparison is not None and comparison.significant
    better = significant and improvement is not None and improvement > 0
    numbers = describe(comparison)
    if significant and improvement is not None and improvement < 0:
        return Action.ROLLBACK, f"challenger significantly worse ({numbers})"
    current = plan.steps[step]
    if not plan.step_ready(step, hours, samples):
        return Action.CONTINUE, (
            f"step {step} needs {current.min_hours:g} h and {current.min_samples} samples per "
            f"arm, has {hours:.3g} h and {samples}"
        )
    if step < plan.final_step:
        return Action.ADVANCE, f"step {step} complete, not worse ({numbers})"
    if plan.promote_rule == "not_worse" or better:
        why = "significantly better" if better else "not significantly worse"
        return Action.PROMOTE, f"final step complete, {why} ({numbers})"
    if plan.max_samples is not None and samples >= plan.max_samples:
        return Action.ROLLBACK, f"no significant improvement after {samples} per arm ({numbers})"
    return Action.CONTINUE, f"no winner yet ({numbers})"


def describe(comparison: Comparison | None) -> str:
    """A comparison in one line: method, effect, interval, p-value and samples."""
    if comparison is None:
        return "not tested yet"
    c = comparison
    return (
        f"{c.method}: effect {c.effect:+.4g}, CI [{c.ci_low:.4g}, {c.ci_high:.4g}], "
        f"p = {c.p_value:.3g}, n = {c.n_champion}/{c.n_challenger}"
    )
