"""The drift verdict's knobs and their rules, in one place: ``DriftThresholds`` with the range
of every threshold and ``psi_warning <= psi_alert``. The settings build one from their drift
settings and report its ``ThresholdError`` under the settings' own names.

It sits beside the ``drift`` package, not in it, because the settings import it and importing
the drift engine (numba, scipy) costs seconds every CLI call would pay;
``retraining_assets.core.drift`` re-exports it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Bound:
    """An interval a threshold must lie in (``low`` excluded unless ``low_closed``)."""

    low: float
    high: float = math.inf
    low_closed: bool = False
    high_closed: bool = True

    def admits(self, value: float) -> bool:
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return math.isfinite(value) and above and below

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"a finite number {'>=' if self.low_closed else '>'} {self.low:g}"
        opening, closing = "[" if self.low_closed else "(", "]" if self.high_closed else ")"
        return f"in {opening}{self.low:g}, {self.high:g}{closing}"


# A zero effect threshold would flag every significant difference, however small; one above
# the largest value its statistic takes (1 for Jensen-Shannon and shares) turns that test off.
BOUNDS: dict[str, Bound] = {
    "psi_alert": Bound(0),
    "psi_warning": Bound(0),
    "wasserstein": Bound(0),
    "jensen_shannon": Bound(0),
    "unseen_share": Bound(0),
    "significance": Bound(0, 1, high_closed=False),
    "dataset_drift_share": Bound(0, 1, low_closed=True),
    "null_rate": Bound(0, low_closed=True),
}


class ThresholdError(ValueError):
    """A threshold out of its range, or two that contradict each other: ``fields`` names the
    thresholds (the offending one first), ``problem`` says what is wrong with the first (and
    ends where the second's name follows)."""

    def __init__(self, fields: tuple[str, ...], problem: str, values: tuple[float, ...]) -> None:
        self.fields = fields
        self.problem = problem
        named = [f"{name} = {value:g}" for name, value in zip(fields, values, strict=True)]
        super().__init__(f"DriftThresholds.{named[0]} {problem} {' '.join(named[1:])}".strip())


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
        for name, bound in BOUNDS.items():
            value = getattr(self, name)
            if not bound.admits(value):
                raise ThresholdError((name,), f"must be {bound}", (value,))
        if self.psi_warning > self.psi_alert:
            pair = (self.psi_warning, self.psi_alert)
            raise ThresholdError(("psi_warning", "psi_alert"), "must not exceed", pair)
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
