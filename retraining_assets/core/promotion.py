"""The promotion gate: the one place that decides whether a candidate replaces the champion.

The asset check ``promotion_threshold``, the ``champion_model`` asset, the CLI and the backtest
all call ``PromotionPolicy.decide``; none of them compares a lift with a threshold itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    PROMOTE = "promote"
    PENDING = "pending_approval"
    REJECT = "reject"


@dataclass(frozen=True)
class Evidence:
    """What the gate looks at, all on the same holdout.

    ``lift`` is the relative lift of the candidate over the champion in the metric's good
    direction (positive: the candidate is better); ``ci_low``/``ci_high`` bound the paired
    bootstrap difference in the same direction. Without a champion, ``baseline`` is the trivial
    model's value (majority class, or the mean) that a first model must beat.
    """

    metric: str
    higher_is_better: bool
    candidate_version: int | None
    candidate: float | None
    champion_version: int | None = None
    champion: float | None = None
    lift: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    baseline: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    evidence: Evidence

    @property
    def promote(self) -> bool:
        return self.verdict is Verdict.PROMOTE

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "reason": self.reason, **self.evidence.to_dict()}


@dataclass(frozen=True)
class PromotionPolicy:
    """Promote on a real gain, ask a person about a small or uncertain one, else keep the champion.

    - no champion yet: promote if the candidate beats the trivial baseline and the optional
      absolute ``floor`` (a minimum for higher-is-better metrics, a maximum otherwise);
    - lift >= ``min_lift`` and the bootstrap lower bound > 0: promote automatically;
    - lift >= ``min_lift`` but not significant, or 0 < lift < ``min_lift``: pending approval;
    - otherwise (no gain, a tie, a loss, or a metric that could not be computed): reject.
    """

    min_lift: float = 0.05
    floor: float | None = None

    def decide(self, evidence: Evidence) -> Decision:
        if evidence.candidate is None:
            return self._reject(evidence, f"no {evidence.metric} for the candidate")
        if evidence.champion is None:
            return self._first_model(evidence)
        lift = evidence.lift
        if lift is None:
            return self._reject(evidence, f"no lift could be computed for {evidence.metric}")
        significant = evidence.ci_low is not None and evidence.ci_low > 0
        shown = f"lift {lift:+.2%} on {evidence.metric}"
        if lift >= self.min_lift and significant:
            return Decision(
                Verdict.PROMOTE, f"{shown} >= {self.min_lift:.0%}, CI excludes 0", evidence
            )
        if lift >= self.min_lift:
            return Decision(
                Verdict.PENDING,
                f"{shown} >= {self.min_lift:.0%} but the CI includes 0: a person decides",
                evidence,
            )
        if lift > 0:
            return Decision(
                Verdict.PENDING, f"{shown} is below {self.min_lift:.0%}: a person decides", evidence
            )
        return self._reject(evidence, f"{shown}: the champion is at least as good")

    def _first_model(self, evidence: Evidence) -> Decision:
        value, better = evidence.candidate, evidence.higher_is_better
        if evidence.baseline is not None and not _beats(value, evidence.baseline, better):
            return self._reject(
                evidence,
                f"first model: {evidence.metric} {value:.4g} does not beat the trivial "
                f"baseline {evidence.baseline:.4g}{_imbalance_hint(evidence)}",
            )
        if self.floor is not None and not (value >= self.floor if better else value <= self.floor):
            bound = "minimum" if better else "maximum"
            return self._reject(
                evidence,
                f"first model: {evidence.metric} {value:.4g} misses the {bound} {self.floor:.4g}",
            )
        return Decision(Verdict.PROMOTE, f"first model: {evidence.metric} {value:.4g}", evidence)

    @staticmethod
    def _reject(evidence: Evidence, reason: str) -> Decision:
        return Decision(Verdict.REJECT, reason, evidence)


# a majority class this large makes accuracy a poor judge: always predicting it scores as well
IMBALANCED_ACCURACY = 0.9


def _imbalance_hint(evidence: Evidence) -> str:
    if evidence.metric != "accuracy" or (evidence.baseline or 0.0) < IMBALANCED_ACCURACY:
        return ""
    return (
        f" (always predicting the majority class scores {evidence.baseline:.1%}: with classes "
        "this unbalanced, judge on RETRAIN_PRIMARY_METRIC=roc_auc or log_loss)"
    )


def _beats(value: float, baseline: float, higher_is_better: bool) -> bool:
    return value > baseline if higher_is_better else value < baseline
