"""Permutation importance of a trained model on its holdout: how much the primary metric
worsens when one feature's values are shuffled. It weights the dataset verdict (a drift in a
feature the model ignores is no reason to page anyone) and is stored with the version.
Only a version that can become champion needs it, so the evaluation computes it for the run's
best candidate (``record_importance``), not for every candidate at registration.

Batched: ``repeats`` permuted copies of the holdout per feature, the copies of several
features stacked into one ``scores`` call (``core.permutation_batches``: capped in cells, so a
wide table's batch is as small in memory as a narrow one's); seeded, the same numbers whatever
the batch. Same definition as ``sklearn.inspection.permutation_importance`` (baseline score minus
permuted score, averaged over the repeats; lower-is-better metrics reversed so that a useful
feature is positive).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.evaluation import compute_metric, get_metric, primary_metric_for, truth
from retraining_assets.core.permutation_batches import MAX_BATCH_CELLS, feature_batches
from retraining_assets.core.registry import Registry
from retraining_assets.core.trained_model import TrainedModel

DEFAULT_REPEATS = 5
MAX_ROWS = 5_000  # a seeded sample of a larger holdout: the ranking is what matters
MIN_ROWS = 30
IMPORTANCE_KEYS = ("permutation_importance", "permutation_importance_skipped")


def permutation_importance(
    model: TrainedModel,
    frame: pd.DataFrame,
    spec: DatasetSpec,
    metric: str,
    *,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
    max_rows: int = MAX_ROWS,
    max_batch_cells: int = MAX_BATCH_CELLS,
) -> dict[str, float]:
    """Feature -> mean drop of ``metric`` when the feature is permuted (see the module
    docstring). Raises ``ValueError`` naming the problem with fewer than ``MIN_ROWS`` rows or
    an undefined metric."""
    rng = np.random.default_rng(seed)
    if len(frame) > max_rows:
        frame = frame.iloc[np.sort(rng.choice(len(frame), max_rows, replace=False))]
    frame = frame.reset_index(drop=True)
    if len(frame) < MIN_ROWS:
        raise ValueError(f"permutation importance needs {MIN_ROWS} rows, got {len(frame)}")
    sign = 1.0 if get_metric(metric).higher_is_better else -1.0
    y = truth(frame, spec, model)
    base = compute_metric(metric, y, model.scores(frame))
    if base is None or not np.isfinite(base):
        raise ValueError(f"{metric} is undefined on the {len(frame)} rows (e.g. a single class)")
    n, features = len(frame), list(spec.features)
    inputs = frame[features]  # what the model reads: other columns would only be copied
    out: dict[str, float] = {}
    for batch in feature_batches(len(features), n * repeats, len(features), max_batch_cells):
        # one copy per batch; each feature's permuted values go into its own rows' slice
        stacked = pd.concat([inputs] * (repeats * len(batch)), ignore_index=True)
        for k, j in enumerate(batch):
            column = inputs.iloc[:, j].to_numpy()
            permuted = np.concatenate([column[rng.permutation(n)] for _ in range(repeats)])
            stacked.iloc[k * repeats * n : (k + 1) * repeats * n, j] = permuted
        scores = model.scores(stacked)
        for k, j in enumerate(batch):
            starts = [(k * repeats + r) * n for r in range(repeats)]
            drops = [
                base - (compute_metric(metric, y, scores[start : start + n]) or base)
                for start in starts
            ]
            out[str(features[j])] = float(sign * np.mean(drops))
    return out


def holdout_importance(
    model: TrainedModel, holdout: pd.DataFrame, spec: DatasetSpec, metric: str | None
) -> dict[str, Any]:
    """``{"permutation_importance": {...}}``, or ``{"permutation_importance_skipped": why}``."""
    try:
        name = primary_metric_for(model.task, metric)
        return {"permutation_importance": permutation_importance(model, holdout, spec, name)}
    except ValueError as error:  # too few holdout rows, a single class
        return {"permutation_importance_skipped": str(error)}


def record_importance(
    registry: Registry,
    pipeline: str,
    version: int,
    model: TrainedModel,
    holdout: pd.DataFrame,
    spec: DatasetSpec,
    metric: str | None,
) -> dict[str, Any]:
    """Store ``version``'s holdout importance (or why there is none) with its metrics, unless
    it already has one; returns what is stored."""
    metrics = registry.get_version(pipeline, version).metrics or {}
    stored = {k: metrics[k] for k in IMPORTANCE_KEYS if k in metrics}
    if stored:
        return stored
    measured = holdout_importance(model, holdout, spec, metric)
    registry.add_metrics(pipeline, version, measured)
    return measured


def stored_importance(registry: Registry, pipeline: str, version: int) -> tuple[dict | None, str]:
    """The version's stored permutation importance, or None and why there is none."""
    metrics = registry.get_version(pipeline, version).metrics or {}
    importance = metrics.get("permutation_importance")
    if importance:
        return importance, ""
    return None, metrics.get("permutation_importance_skipped") or (
        f"v{version} was registered without a permutation importance"
    )
