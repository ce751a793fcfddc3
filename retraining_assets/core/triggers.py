"""The retrain decision: the one place that turns signals into "retrain now, because ...".

Sensors, the schedule, the demo and the backtest gather signals (a drift verdict from
metadata, a cheap count of new records, the champion's live metric) and call
``RetrainPolicy.decide``; none of them compares a signal with a threshold itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from retraining_assets.core.evaluation import relative_lift


class Cause(StrEnum):
    NO_CHAMPION = "no_champion"
    DRIFT = "drift"
    VOLUME = "volume"
    PERFORMANCE = "performance"
    ESTIMATED_DEGRADATION = "estimated_degradation"
    SCHEDULE = "schedule"


@dataclass(frozen=True)
class Reason:
    cause: Cause
    detail: str

    def __str__(self) -> str:
        return f"{self.cause.value}: {self.detail}"


@dataclass(frozen=True)
class Signals:
    """What is known about a pipeline when the decision is asked for.

    ``None`` means "not known yet" (no drift report, no live metric) and never triggers.
    ``live_metric`` is the champion's primary metric on the newest labelled period and
    ``baseline_metric`` the same metric at its evaluation; ``estimated_metric`` the same
    metric estimated without labels (``core.estimation``) on the newest period.
    """

    has_champion: bool
    drift_detected: bool | None = None
    drifted_features: tuple[str, ...] = ()
    drift_acted_on: tuple[str, ...] = ()  # the drifted features the last training acted on
    new_records: int | None = None
    live_metric: float | None = None
    estimated_metric: float | None = None
    baseline_metric: float | None = None
    higher_is_better: bool = True
    scheduled: bool = False
    last_training: datetime | None = None
    now: datetime | None = None


@dataclass(frozen=True)
class RetrainDecision:
    retrain: bool
    reasons: tuple[Reason, ...] = ()
    suppressed_by: str | None = None  # why reasons did not lead to a retrain (cooldown)

    @property
    def causes(self) -> list[str]:
        return [reason.cause.value for reason in self.reasons]

    def summary(self) -> str:
        if not self.reasons:
            return "no reason to retrain"
        text = "; ".join(str(reason) for reason in self.reasons)
        return f"{text} (suppressed: {self.suppressed_by})" if self.suppressed_by else text

    def tags(self) -> dict[str, str]:
        """Run tags that carry every reason (Dagster tag values are strings)."""
        return {
            "retrain/causes": ",".join(self.causes),
            "retrain/reasons": self.summary()[:4000],
        }


@dataclass(frozen=True)
class RetrainPolicy:
    """Retrain when there is no champion, on drift, on more than ``volume_threshold`` new
    labelled records, when the live metric or the metric estimated without labels dropped by
    ``degradation`` (relative, in the metric's good direction; one rule for both) or on the
    schedule. Within ``cooldown`` of the last training
    nothing but a missing champion or the schedule starts another run, so one cause seen by
    several sensor ticks does not start two runs."""

    volume_threshold: int = 1000
    degradation: float = 0.1
    cooldown: timedelta = field(default=timedelta(0))

    def decide(self, signals: Signals) -> RetrainDecision:
        reasons = tuple(r for r in self._reasons(signals) if r is not None)
        if not reasons:
            return RetrainDecision(False)
        urgent = {Cause.NO_CHAMPION, Cause.SCHEDULE}
        if self._cooling_down(signals) and not urgent & {r.cause for r in reasons}:
            return RetrainDecision(False, reasons, suppressed_by=f"cooldown of {self.cooldown}")
        return RetrainDecision(True, reasons)

    def _reasons(self, s: Signals) -> list[Reason | None]:
        return [
            Reason(Cause.NO_CHAMPION, "no production model yet") if not s.has_champion else None,
            self._drift(s),
            self._volume(s),
            self._degraded(Cause.PERFORMANCE, "live", s.live_metric, s),
            self._degraded(Cause.ESTIMATED_DEGRADATION, "estimated", s.estimated_metric, s),
            Reason(Cause.SCHEDULE, "the periodic retraining is due") if s.scheduled else None,
        ]

    @staticmethod
    def _drift(s: Signals) -> Reason | None:
        # a drift the last training already acted on (no feature drifting that did not drift
        # then) is not a reason again: a persisting shift whose candidate did not pass the gate
        # waits for new features, new records, a live-metric drop or the schedule
        if not s.drift_detected or (
            s.drifted_features and set(s.drifted_features) <= set(s.drift_acted_on)
        ):
            return None
        return Reason(Cause.DRIFT, "drift in " + (", ".join(s.drifted_features) or "the data"))

    def _volume(self, s: Signals) -> Reason | None:
        if s.new_records is None or s.new_records <= self.volume_threshold:
            return None
        return Reason(
            Cause.VOLUME, f"{s.new_records} new records since the last training "
            f"(more than {self.volume_threshold})"
        )  # fmt: skip

    def _degraded(self, cause: Cause, kind: str, value: float | None, s: Signals) -> Reason | None:
        """The one degradation rule, for the live and the estimated metric alike."""
        drop = relative_drop(value, s.baseline_metric, s.higher_is_better)
        if drop is None or drop < self.degradation:
            return None
        return Reason(
            cause,
            f"{kind} metric {value:.4g} is {drop:.1%} worse than at evaluation "
            f"({s.baseline_metric:.4g}; limit {self.degradation:.0%})",
        )

    def estimated_degradation(
        self, estimated: float | None, baseline: float | None, higher_is_better: bool
    ) -> Reason | None:
        """The degradation rule on an estimate alone (the ``estimated`` drift verdict gates
        its alarm with it): the same ``_degraded`` as the trigger, so one threshold."""
        signals = Signals(
            has_champion=True, baseline_metric=baseline, higher_is_better=higher_is_better
        )
        return self._degraded(Cause.ESTIMATED_DEGRADATION, "estimated", estimated, signals)

    def _cooling_down(self, s: Signals) -> bool:
        if not self.cooldown or s.last_training is None or s.now is None:
            return False
        return s.now - s.last_training < self.cooldown


def relative_drop(
    live: float | None, baseline: float | None, higher_is_better: bool
) -> float | None:
    """How much worse ``live`` is than ``baseline`` (positive: worse): ``relative_lift`` of
    the live metric over the baseline, negated, so both share one formula and one handling of
    a baseline near zero (the plain difference); None when either is unknown."""
    if live is None or baseline is None:
        return None
    return -relative_lift(live, baseline, higher_is_better)
