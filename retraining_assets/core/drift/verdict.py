"""The rules that turn statistics into a verdict under the knobs of ``DriftThresholds``
(``core/drift_thresholds.py``): per feature (an effect size past its threshold and a BH q-value
below the significance level), for null rates, and for the dataset (the, optionally
importance-weighted, drifted share)."""

from __future__ import annotations

from typing import Any

from retraining_assets.core.drift.stats import benjamini_hochberg
from retraining_assets.core.drift_thresholds import DriftThresholds


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
