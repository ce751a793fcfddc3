"""The reference: what each period is validated and compared against.

Until a champion exists it is the first configured periods of the record source; afterwards
the champion's training window (each model version keeps its own drift profile, so a
rollback restores what drift is measured against).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.drift import ReferenceProfile, fit_reference
from retraining_assets.core.validation import ReferenceBounds


@dataclass(frozen=True)
class Reference:
    """GX bounds and the drift profile of one reference window."""

    start: datetime
    end: datetime
    rows: int
    origin: str  # "first periods" or "champion v<N>"
    bounds: ReferenceBounds
    profile: ReferenceProfile

    @classmethod
    def fit(
        cls, frame: pd.DataFrame, spec: DatasetSpec, start: datetime, end: datetime, origin: str
    ) -> Reference:
        return cls(
            start=start,
            end=end,
            rows=len(frame),
            origin=origin,
            bounds=ReferenceBounds.learn(frame, spec),
            profile=fit_drift_profile(frame, spec),
        )

    @property
    def window(self) -> str:
        return f"{self.start:%Y-%m-%d} to {self.end:%Y-%m-%d}"


def fit_drift_profile(frame: pd.DataFrame, spec: DatasetSpec) -> ReferenceProfile:
    """The spec decides each feature's kind; the target's distribution is profiled too."""
    return fit_reference(
        frame,
        numeric=list(spec.numeric_features),
        categorical=list(spec.categorical_features),
        target=spec.target,
        target_kind="numeric" if spec.task == "regression" else "categorical",
    )
