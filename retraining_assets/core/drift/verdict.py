"""The verdict's knobs (``DriftThresholds``) and the rules that turn statistics into a
verdict: per feature (an effect size past its threshold and a BH q-value below the significance
level), for null rates, and for the dataset (the, optionally importance-weighted, drifted share)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from retraining_assets.core.drift.stats import benjamini_hochberg


@dataclass(frozen=True)
class DriftThresholds:
    """Every knob of the verdict. ``dataset_drift_share=0`` means "any drifted feature".

    ``feature_importances`` (optional) weights the drifted share; features missing from the
    mapping weigh 0. ``null_rate`` is the absolute null-share change that, together with a
    significant two-proportion test, flags a null-rate change (reported, not feature drift).
    """

    psi_alert: float = 0.2
    psi_warning: float = 0.1
    wasserstein: float = 0.1
    jensen_shannon: float = 0.1
    unseen_share: float = 0.1
    significance: float = 0.05
    dataset_drift_share: float = 0.0
    null_rate: float = 0.05
    feature_importances: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        for name in ("psi_alert", "psi_warning", "wasserstein", "jensen_shannon",
                     "unseen_share", "null_rate"):  # fmt: skip
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"DriftThresholds.{name} must be a finite number >= 0: {value}")
        if self.psi_warning > self.psi_alert:
            raise ValueError("DriftThresholds.psi_warning must not exceed psi_alert")
        if not 0 < self.significance < 1:
            raise ValueError(f"DriftThresholds.significance must be in (0, 1): {self.significance}")
        if not 0 <= self.dataset_drift_share <= 1:
            raise ValueError("DriftThresholds.dataset_drift_share must be in [0, 1]")
        for name, weight in (self.feature_importances or {}).items():
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError(f"feature importance of {name!r} must be finite and >= 0")

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.feature_importances is not None:
            out["feature_importances"] = dict(self.feature_importances)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftThresholds:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _apply_verdict(
    entry: dict[str, Any], unseen: dict[str, Any] | None, t: DriftThresholds
) -> None:
    if not entry["testable"]:
        return
    candidates = {"psi": t.psi_alert, "jensen_shannon": t.jensen_shannon}
    if entry["kind"] == "numeric":
        candidates["wasserstein"] = t.wasserstein
    exceeded = [k for k, limit in candidates.items() if entry[k] is not None and entry[k] >= limit]
    significant = entry["q_value"] is not None and entry["q_value"] < t.significance
    unseen_alert = bool(
        unseen and unseen["share"] is not None and unseen["share"] >= t.unseen_share
    )
    if unseen_alert:
        exceeded.append("unseen_share")
    entry["exceeded"] = exceeded
    entry["drifted"] = bool((exceeded and significant) or unseen_alert)
    entry["psi_warning"] = bool(not entry["drifted"] and entry["psi"] >= t.psi_warning)


def _assign_q_values(entries: list[dict[str, Any]]) -> None:
    """BH over the p-values of every testable entry given (one family)."""
    tested = [e for e in entries if e.get("p_value") is not None]
    for entry, q in zip(tested, benjamini_hochberg([e["p_value"] for e in tested]), strict=True):
        entry["q_value"] = float(q)


def _null_verdict(nulls: dict[str, Any], t: DriftThresholds) -> None:
    nulls["changed"] = bool(
        abs(nulls["change"]) >= t.null_rate
        and nulls["q_value"] is not None
        and nulls["q_value"] < t.significance
    )


def _dataset_verdict(
    features: dict[str, dict[str, Any]], t: DriftThresholds, notes: list[str]
) -> tuple[bool, float]:
    testable = [name for name, e in features.items() if e["testable"]]
    weights = {
        name: (t.feature_importances or {}).get(name, 0.0) if t.feature_importances else 1.0
        for name in testable
    }
    total = sum(weights.values())
    if testable and total == 0:
        notes.append("feature importances give every testable feature weight 0")
    share = sum(w for n, w in weights.items() if features[n]["drifted"]) / total if total else 0.0
    any_drift = any(features[n]["drifted"] for n in testable)
    if t.dataset_drift_share == 0:
        return any_drift, share
    return share >= t.dataset_drift_share, share
