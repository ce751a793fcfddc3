"""Candidates: a trained model registered as a new version with its drift reference, and a
registered model loaded back (its signature checked, reused within one process)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.estimation import fit_model_estimator
from retraining_assets.core.evaluation import compute_metrics, truth
from retraining_assets.core.reference import Reference, WindowBands, calibrate_reference
from retraining_assets.core.registry import (
    Actor,
    ModelVersion,
    Registry,
    code_version,
    version_name,
)
from retraining_assets.core.timescales import TimeScales
from retraining_assets.core.training import (
    Split,
    TrainedModel,
    model_from_bytes,
    model_to_bytes,
)


@dataclass(frozen=True)
class TrainingWindow:
    """The records one retraining cycle learns from, with its drift reference."""

    split: Split
    start: datetime
    end: datetime
    fingerprint: str  # of the window's records: the same window is never trained twice
    sample: dict[str, Any] | None = None  # what was read of it (TrainingSample.to_dict)
    # the drift bands of the window's own periods (or why none), computed once per window
    # (``with_bands``) for all its candidates; None: each candidate computes them
    bands: WindowBands | None = None

    @property
    def records(self) -> pd.DataFrame:
        """The whole window: what its candidates' drift reference is fitted on."""
        split = self.split
        return pd.concat([split.train, split.valid, split.holdout])

    def with_bands(self, spec: DatasetSpec, scales: TimeScales | None) -> TrainingWindow:
        return replace(self, bands=calibrate_reference(self.records, spec, scales))


def register_candidate(
    registry: Registry,
    pipeline: str,
    model: TrainedModel,
    window: TrainingWindow,
    spec: DatasetSpec,
    *,
    run_id: str | None,
    actor: Actor,
    scales: TimeScales | None = None,
) -> ModelVersion:
    """Store a trained candidate as a new version, with its validation metrics and the drift
    reference of its training window, its own scores included (so a promotion or rollback
    also moves what drift and prediction drift are measured against). Its permutation
    importance is added if it is judged the best (``importance.record_importance``)."""
    frame = window.records
    valid = window.split.valid
    # one scoring pass serves the registry's validation metrics and the prediction-drift
    # reference; scores on rows the model never fitted (in-sample scores, a forest's near 0/1 on
    # its own training rows, would make every new month look like prediction drift)
    raw = model.scores(valid)
    reference = Reference.fit(
        frame, spec, window.start, window.end, origin=f"v-{model.family}",
        scores=summarise_scores(model, raw),
        estimator=fit_model_estimator(model, window.split.holdout, spec).to_dict(),
        scales=scales,  # the pipeline's periods: the bands' periods, as the backtest's
        bands=window.bands,
    )  # fmt: skip
    artifact = model_to_bytes(model)
    _remember(artifact, model)
    return registry.register_version(
        pipeline,
        family=model.family,
        model_bytes=artifact,
        params={
            **model.params,
            "training_seconds": round(model.training_seconds, 3),
            **({"training_sample": window.sample} if window.sample else {}),
        },
        metrics={
            "valid": compute_metrics(model.task, truth(valid, spec, model), raw),
        },
        train_start=window.start,
        train_end=window.end,
        data_fingerprint=window.fingerprint,
        code_version=code_version(),
        dataset_spec=spec.to_json(),
        profile_bytes=reference.to_bytes(),
        profile_hash=reference.profile.content_hash,
        run_id=run_id,
        by=actor.by,
        actual_user=actor.actual_user,
    )


def prediction_scores(model: TrainedModel, frame: pd.DataFrame) -> np.ndarray:
    """What prediction drift compares, for the model's predictions on ``frame``."""
    return summarise_scores(model, model.scores(frame))


def summarise_scores(model: TrainedModel, raw: np.ndarray) -> np.ndarray:
    """The positive-class probability (binary), the predicted value (regression) or the
    predicted class (multiclass) from the model's raw scores."""
    if model.task == "binary":
        return raw[:, -1]
    if model.task == "regression":
        return raw
    return np.asarray(model.classes, dtype=object)[raw.argmax(axis=1)]


def load_model(registry: Registry, pipeline: str, version: int) -> TrainedModel:
    """A registered model, its artifact's signature always verified first: a legacy pickle
    artifact is unpickled only then, and only when the registry allows legacy pickles (new
    ones hold no pickle). Within one process (the in-process executor, the demo) the loaded
    model is reused for identical bytes: the ensemble and the evaluation load models the same
    run has just trained."""
    # refuses a bad signature, and a legacy pickle when RETRAIN_LEGACY_PICKLES is off
    artifact = registry.load_model_bytes(pipeline, version)
    cached = _LOADED.get(_digest(artifact))
    if cached is not None:
        return cached
    name = f"the model artifact of {pipeline} {version_name(version)}"
    return _remember(artifact, model_from_bytes(artifact, name=name, allow_pickle=True))


_LOADED: OrderedDict[str, TrainedModel] = OrderedDict()  # artifact SHA-256 -> model
_LOADED_MAX = 8


def _digest(artifact: bytes) -> str:
    return hashlib.sha256(artifact).hexdigest()


def _remember(artifact: bytes, model: TrainedModel) -> TrainedModel:
    _LOADED[_digest(artifact)] = model
    while len(_LOADED) > _LOADED_MAX:
        _LOADED.popitem(last=False)
    return model
