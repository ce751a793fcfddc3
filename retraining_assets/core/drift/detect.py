"""The one-call entry points: fit a reference and compare with it at once, from frames or files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from retraining_assets.core.drift.fit import fit_reference
from retraining_assets.core.drift.multivariate import MAX_ROWS
from retraining_assets.core.drift.report import DriftReport
from retraining_assets.core.drift_thresholds import DriftThresholds


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    thresholds: DriftThresholds | None = None,
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    reference_target: pd.Series | np.ndarray | str | None = None,
    current_target: pd.Series | np.ndarray | str | None = None,
    reference_scores: pd.Series | np.ndarray | str | None = None,
    current_scores: pd.Series | np.ndarray | str | None = None,
    target_column: str | None = None,
    score_column: str | None = None,
    n_jobs: int | None = None,
    multivariate: bool = False,
    **fit_options: Any,
) -> DriftReport:
    """Fit the reference and compare ``current`` in one call (see :func:`fit_reference`).

    ``target_column``/``score_column`` name a column present in both frames (shorthand for
    passing the name as reference and current target/scores). ``multivariate=True`` adds
    the domain classifier and reconstruction drift (``report.multivariate``; the reference
    keeps a seeded sample of ``sample_rows`` rows, 20,000 unless given); without it the
    result and the speed are the univariate ones.
    """
    if multivariate:
        fit_options.setdefault("sample_rows", MAX_ROWS)
    profile = fit_reference(
        reference,
        numeric,
        categorical,
        target=reference_target if reference_target is not None else target_column,
        scores=reference_scores if reference_scores is not None else score_column,
        n_jobs=n_jobs,
        **fit_options,
    )
    return profile.compare(
        current,
        thresholds,
        target=current_target if current_target is not None else target_column,
        scores=current_scores if current_scores is not None else score_column,
        n_jobs=n_jobs,
        multivariate=multivariate,
    )
