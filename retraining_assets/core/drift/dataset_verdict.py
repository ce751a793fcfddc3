"""The dataset verdict: does this drift report raise the alarm? One function for the sensors,
the backtest and the CLI (``RETRAIN_DRIFT_VERDICT`` names the mode).

Modes (``+`` combines them):

* ``univariate``: today's rule, exactly ``report.dataset_drift`` (any drifted feature, or the
  drifted share past ``RETRAIN_DATASET_DRIFT_SHARE``); score = the drifted share.
* ``weighted``: the drifted features weighted by the champion's permutation importance
  (``core.importance``); alarm when the weighted share reaches ``weighted_share``, so a feature
  the model ignores cannot raise it alone; score = the weighted share.
* ``calibrated``: a drifted feature counts only when one of the effect sizes it exceeded also
  leaves the band the reference's own periods moved in (``calibration``); an unseen-category
  alarm always counts (the model never saw that category).
* ``multivariate``: the domain classifier's verdict (``report.multivariate``); score = its AUC.
* ``estimated``: a performance gate on the rest of the combination (alone: on ``univariate``):
  the drift alarm stands only when the serving model's primary metric, estimated without
  labels on the same window (CBPE / DLE, ``core.estimation``), dropped by the live-metric
  threshold (``RetrainPolicy.estimated_degradation``, the trigger's one rule); score = the
  drift part's. Without an estimate (no probabilities, a single class in the calibration set,
  no champion) the drift part decides and ``skipped`` says why.

``calibrated+weighted`` weights the calibrated features; a combination with ``multivariate``
alarms when both its feature part and the classifier do. A part that cannot be computed (no
importances stored, too few reference periods, the classifier skipped) is named in
``skipped`` with the reason, and the verdict falls back: weighting to the unweighted share,
calibration to the feature verdict, the classifier to the rest of the combination (to
``univariate`` alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from retraining_assets.core.drift.calibration import STATISTICS, CalibrationBands
from retraining_assets.core.drift.report import DriftReport

MODES = ("univariate", "weighted", "calibrated", "multivariate", "estimated")
DEFAULT_WEIGHTED_SHARE = 0.1


class VerdictError(ValueError):
    """An unknown verdict mode."""


@dataclass(frozen=True)
class Alarm:
    """The verdict of one report: ``score`` is the dataset score the mode compares."""

    alarm: bool
    score: float
    mode: str
    reasons: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "part: why it was not computed"
    features: list[str] = field(default_factory=list)  # the features that count toward it
    raw_share: float = 0.0  # drifted share, every feature alike
    weighted_share: float | None = None  # importance-weighted share (None: no importances)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DegradationRule(Protocol):
    """``core.triggers.RetrainPolicy`` as the gate sees it (typed structurally: the triggers
    import the evaluation stack, which imports the settings, which import this module)."""

    degradation: float

    def estimated_degradation(
        self, estimated: float | None, baseline: float | None, higher_is_better: bool
    ) -> Any: ...  # a Reason with ``detail``, or None


@dataclass(frozen=True)
class EstimateGate:
    """What the ``estimated`` part needs: the serving model's primary metric estimated
    without labels on the verdict's window, the same metric at its evaluation, and the retrain
    policy whose degradation rule decides; ``skipped`` says why there is no estimate."""

    policy: DegradationRule
    estimated: float | None
    baseline: float | None
    higher_is_better: bool = True
    skipped: str | None = None


def parse_mode(text: str) -> tuple[str, ...]:
    """The parts of a mode like ``calibrated+weighted``, checked (the error names the setting)."""
    parts = tuple(p.strip() for p in str(text).split("+") if p.strip())
    unknown = [p for p in parts if p not in MODES]
    if not parts or unknown or len(set(parts)) != len(parts):
        raise VerdictError(
            f"RETRAIN_DRIFT_VERDICT must be one of {list(MODES)} or a '+' combination of "
            f"distinct ones (e.g. calibrated+weighted), got {text!r}"
        )
    if "univariate" in parts and len(parts) > 1:
        raise VerdictError(
            f"univariate combines with nothing (it is the plain rule; 'estimated' alone gates "
            f"it): {text!r}"
        )
    return parts


def normalised(importances: Mapping[str, float] | None) -> dict[str, float] | None:
    """Importances as weights summing to 1 (negative ones, noise, clipped to 0); None when
    there are none or all are 0."""
    if not importances:
        return None
    clipped = {str(k): max(float(v), 0.0) for k, v in importances.items()}
    total = sum(clipped.values())
    return {k: v / total for k, v in clipped.items()} if total > 0 else None


def dataset_alarm(
    report: DriftReport,
    mode: str = "univariate",
    *,
    importances: Mapping[str, float] | None = None,
    calibration: CalibrationBands | None = None,
    calibration_skipped: str | None = None,
    importance_skipped: str | None = None,
    weighted_share: float = DEFAULT_WEIGHTED_SHARE,
    estimate: EstimateGate | None = None,
) -> Alarm:
    """The dataset verdict of ``report`` under ``mode`` (see the module docstring);
    ``calibration_skipped`` / ``importance_skipped`` say why the bands / importances are
    missing, for the alarm's ``skipped``; ``estimate`` feeds the ``estimated`` gate."""
    parts = parse_mode(mode)
    if "estimated" in parts:
        drift = "+".join(p for p in parts if p != "estimated") or "univariate"
        alarm = dataset_alarm(
            report, drift, importances=importances, calibration=calibration,
            calibration_skipped=calibration_skipped, importance_skipped=importance_skipped,
            weighted_share=weighted_share,
        )  # fmt: skip
        return _gated(replace(alarm, mode="+".join(parts)), estimate)
    testable = [str(n) for n, e in report.features.items() if e["testable"]]
    drifted = [str(n) for n in report.drifted_features if str(n) in testable]
    raw = len(drifted) / len(testable) if testable else 0.0
    weights = normalised(importances)
    weighted = _share(drifted, testable, weights) if weights else None
    if parts == ("univariate",):
        reasons = [f"drift in {', '.join(drifted)}"] if report.dataset_drift else []
        return Alarm(report.dataset_drift, report.drift_share, mode, reasons, [], drifted,
                     raw, weighted)  # fmt: skip
    skipped: list[str] = []
    reasons: list[str] = []
    counted = drifted
    if "calibrated" in parts:
        if calibration is None:
            skipped.append(f"calibrated: {calibration_skipped or 'no bands stored'}; "
                           "the feature verdict counts as is")  # fmt: skip
        else:
            counted = [n for n in drifted if _out_of_band(report.features[n], n, calibration)]
            inside = sorted(set(drifted) - set(counted))
            if inside:
                reasons.append(f"inside the reference's normal variation: {', '.join(inside)}")
    feature_parts = {"weighted", "calibrated"} & set(parts)
    if "weighted" in parts and weights is None:
        skipped.append("weighted: no feature importances stored with the model; "
                       "every feature weighs alike")  # fmt: skip
    if "weighted" in parts:  # without importances: the plain share against the same level
        score = _share(counted, testable, weights or dict.fromkeys(testable, 1.0))
        feature_alarm = score >= weighted_share
        kind = "importance-weighted" if weights else "unweighted"
        rule = f"{kind} share {score:.3f} (alarm at {weighted_share:g})"
    else:
        score = len(counted) / len(testable) if testable else 0.0
        feature_alarm = (
            bool(counted)
            if not report.thresholds.get("dataset_drift_share")
            else (score >= report.thresholds["dataset_drift_share"])
        )
        rule = f"{len(counted)} of {len(testable)} features count"
    if feature_parts:
        reasons.append(rule + (f": {', '.join(counted)}" if counted else ""))
    alarm = feature_alarm
    if "multivariate" in parts:
        classifier = report.multivariate.classifier if report.multivariate else None
        if classifier is None or classifier.skipped:
            why = classifier.skipped if classifier else "not computed for this report"
            fallback = "the feature verdict alone" if feature_parts else "the univariate verdict"
            skipped.append(f"multivariate: {why}; {fallback} decides")
            if not feature_parts:
                alarm, score = report.dataset_drift, report.drift_share
        else:
            reasons.append(f"domain classifier AUC {classifier.auc:.3f}, p {classifier.p_value:.3g}"
                           + (" (drifted)" if classifier.drifted else ""))  # fmt: skip
            alarm = classifier.drifted and (feature_alarm if feature_parts else True)
            score = classifier.auc if not feature_parts else score
    if "weighted" in parts and weights is None and importance_skipped:
        skipped.append(f"importance: {importance_skipped}")
    return Alarm(bool(alarm), float(score), mode, reasons, skipped, counted, raw, weighted)


def _gated(alarm: Alarm, gate: EstimateGate | None) -> Alarm:
    """The drift alarm kept only when the estimate degraded (or as is without an estimate)."""
    estimated = gate.estimated if gate else None
    baseline = gate.baseline if gate else None
    if gate is None or estimated is None or baseline is None:
        why = (gate.skipped if gate else None) or (
            "no baseline metric stored with the model"
            if estimated is not None
            else "no estimate of the serving model's metric"
        )
        return replace(alarm, skipped=[*alarm.skipped, f"estimated: {why}; the drift verdict "
                                       "alone decides"])  # fmt: skip
    degraded = gate.policy.estimated_degradation(estimated, baseline, gate.higher_is_better)
    if degraded is not None:
        return replace(alarm, reasons=[*alarm.reasons, degraded.detail])
    limit = gate.policy.degradation
    held = (f"estimated metric {estimated:.4g} against {baseline:.4g} at evaluation is within "
            f"the degradation limit ({limit:.0%}): performance holds")  # fmt: skip
    return replace(alarm, alarm=False, reasons=[*alarm.reasons, held])


def _share(features: list[str], testable: list[str], weights: Mapping[str, float]) -> float:
    total = sum(weights.get(n, 0.0) for n in testable)
    return sum(weights.get(n, 0.0) for n in features) / total if total > 0 else 0.0


def _out_of_band(entry: Mapping[str, Any], name: str, bands: CalibrationBands) -> bool:
    """A drifted feature leaves its band when an effect size it exceeded passes the band too
    (a feature without a band, e.g. constant in the reference, keeps its verdict)."""
    exceeded = entry.get("exceeded") or []
    if "unseen_share" in exceeded:
        return True
    for statistic in (s for s in exceeded if s in STATISTICS):
        band = bands.band(name, statistic)
        if band is None or entry[statistic] > band:
            return True
    return False
