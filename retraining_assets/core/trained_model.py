"""A trained model: what it is, how it was trained, and how it scores a raw pandas frame.

Two kinds of scorer sit behind ``TrainedModel.scores``: one fitted preprocessor plus one
estimator (``FittedEstimator``, every base family), or a weighted soft vote over trained
members (``SoftVote``, the ensemble). ``model_files`` stores and loads exactly these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer

from retraining_assets.core.dataset import Task
from retraining_assets.core.preprocessing import feature_matrix
from retraining_assets.core.splits import TrainingError, require_columns

__all__ = ["FittedEstimator", "SoftVote", "TrainedModel"]


class _Scorer(Protocol):
    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Probabilities (n, k) over the model's classes, or regression values (n,)."""
        ...


@dataclass
class FittedEstimator:
    """A preprocessor plus an estimator trained on the classes present in the train part."""

    preprocessor: ColumnTransformer
    estimator: Any  # sklearn-style: predict_proba (classification) or predict (regression)
    task: Task
    present: np.ndarray  # indices (into the model's classes) the estimator was trained on
    n_classes: int

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        X = feature_matrix(self.preprocessor, frame)
        if self.task == "regression":
            return np.asarray(self.estimator.predict(X), dtype=np.float64)
        proba = np.zeros((len(frame), self.n_classes))
        raw = np.asarray(self.estimator.predict_proba(X), dtype=np.float64)
        # float32 outputs (XGBoost) sum to 1 only approximately; metrics expect exact rows.
        proba[:, self.present] = raw / raw.sum(axis=1, keepdims=True)
        return proba


@dataclass
class SoftVote:
    """The weighted mean of the members' scores."""

    members: list[TrainedModel]
    weights: np.ndarray

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        stacked = np.stack([member.scores(frame) for member in self.members])
        return np.tensordot(self.weights, stacked, axes=1)


@dataclass
class TrainedModel:
    """A trained candidate: what it is, how it was trained, and how to predict with it."""

    family: str
    task: Task
    params: dict[str, Any]
    training_seconds: float
    classes: tuple[str, ...]
    features: tuple[str, ...]
    scorer: _Scorer = field(repr=False)

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Probabilities (n, k) in ``classes`` order, or regression predictions (n,)."""
        require_columns(frame, self.features, f"{self.family} model input")
        if len(frame) == 0:
            return np.zeros((0, len(self.classes))) if self.classes else np.zeros(0)
        return self.scorer.scores(frame)

    @property
    def fitted(self) -> FittedEstimator | None:
        """The one preprocessor and estimator behind ``scores`` (None for an ensemble): what
        the service's compiled scorer is built from."""
        return self.scorer if isinstance(self.scorer, FittedEstimator) else None

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if self.task == "regression":
            raise TrainingError(f"{self.family}: predict_proba needs a classification model")
        return self.scores(frame)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Class labels (strings from ``classes``) or regression values (floats)."""
        scores = self.scores(frame)
        if self.task == "regression":
            return scores
        return np.asarray(self.classes, dtype=object)[scores.argmax(axis=1)]
