"""Trainers for the candidate model families, behind one small interface.

Every family shares one preprocessing pipeline (``build_preprocessor``) fitted on the train
part only, and every trained model is a ``TrainedModel`` that takes a raw pandas frame:

- ``random_forest``: scikit-learn random forest (bounded depth, bounded rows per tree);
- ``xgboost``: gradient-boosted trees (``hist``), early stopping on the valid part;
- ``neural_net``: a torch MLP (two hidden layers) with early stopping on the valid part;
- ``ensemble``: soft voting over already-trained members (see ``train_ensemble``).

Classification labels are handled as strings (``DatasetSpec.classes`` are strings), so a 0/1
integer target and its spec ``("0", "1")`` agree. Thread counts follow ``OMP_NUM_THREADS``
(default 1) so that parallel Dagster steps do not oversubscribe the machine.

The preprocessing lives in ``preprocessing``, the model object in ``trained_model``, the torch
network in ``neural_net`` and the model files in ``model_files``; their public names are
re-exported here.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.metrics import log_loss, mean_squared_error
from xgboost import XGBClassifier, XGBRegressor

from retraining_assets.core.dataset import (
    DatasetSpec,
    Task,
    class_labels,
    label_strings,
)
from retraining_assets.core.model_files import model_from_bytes, model_to_bytes
from retraining_assets.core.preprocessing import (  # noqa: F401 (_as_*: legacy pickles)
    MAX_CATEGORIES,
    MISSING_CATEGORY,
    _as_float,
    _as_strings,
    build_preprocessor,
    feature_matrix,
)
from retraining_assets.core.splits import (  # the split is re-exported: trainers take it
    Split,
    TrainingError,
    require_columns,
    split_by_time,
    split_for_training,
)
from retraining_assets.core.trained_model import FittedEstimator, SoftVote, TrainedModel

# Legacy pickled artifacts name their classes and functions ``retraining_assets.core.training.
# <name>`` (_as_float, _as_strings, _FittedEstimator, _SoftVote, MLPConfig, TorchMLP, ...) and
# unpickling looks them up here: keep every one of them importable from this module.
_FittedEstimator, _SoftVote = FittedEstimator, SoftVote


def __getattr__(name: str) -> Any:
    """``MLPConfig`` and ``TorchMLP`` on first use (legacy pickles), without torch before."""
    if name in ("MLPConfig", "TorchMLP"):
        from retraining_assets.core import neural_net

        return getattr(neural_net, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BASE_FAMILIES",
    "FAMILIES",
    "MAX_CATEGORIES",
    "MISSING_CATEGORY",
    "RF_MAX_ROWS_PER_TREE",
    "FittedEstimator",
    "Split",
    "TrainedModel",
    "TrainingError",
    "build_preprocessor",
    "data_fingerprint",
    "encode_labels",
    "model_classes",
    "model_from_bytes",
    "model_to_bytes",
    "split_by_time",
    "split_for_training",
    "thread_count",
    "train_candidates",
    "train_ensemble",
    "train_model",
]

BASE_FAMILIES: tuple[str, ...] = ("random_forest", "xgboost", "neural_net")
FAMILIES: tuple[str, ...] = (*BASE_FAMILIES, "ensemble")
RF_MAX_ROWS_PER_TREE = 50_000  # bounds forest cost on large tables; more rows add little


def thread_count() -> int:
    """Threads a trainer may use: ``OMP_NUM_THREADS`` when set, else 1."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1


# --- labels ----------------------------------------------------------------------------------
def model_classes(spec: DatasetSpec, target: pd.Series) -> tuple[str, ...]:
    """The spec's classes, or (when the spec lists none) the sorted labels seen in ``target``."""
    if spec.task == "regression":
        return ()
    return spec.classes or class_labels(target)


def encode_labels(values: pd.Series | Sequence[Any], classes: Sequence[str]) -> np.ndarray:
    """Positions of ``values`` (compared as strings) in ``classes``; unknown labels raise."""
    labels = label_strings(values).to_numpy(dtype=object)
    known = np.asarray(classes, dtype=object)
    order = np.argsort(known)
    positions = np.searchsorted(known[order], labels)
    positions = np.clip(positions, 0, len(known) - 1)
    codes = order[positions]
    unknown = labels != known[codes]
    if unknown.any():
        raise TrainingError(
            f"labels {sorted(set(labels[unknown]))[:5]} are not among the classes {list(classes)}"
        )
    return codes.astype(np.int64)


def _targets(frame: pd.DataFrame, spec: DatasetSpec, classes: Sequence[str]) -> np.ndarray:
    if spec.task == "regression":
        return frame[spec.target].to_numpy(dtype=np.float64)
    return encode_labels(frame[spec.target], classes)


# --- family trainers -------------------------------------------------------------------------
@dataclass
class _Data:
    """Preprocessed train/valid matrices; y are class positions among ``present`` classes."""

    X: np.ndarray
    y: np.ndarray
    X_valid: np.ndarray
    y_valid: np.ndarray
    task: Task
    seed: int
    threads: int
    weight: np.ndarray | None = None  # per train row; None: all rows alike


def _fit_random_forest(data: _Data) -> tuple[Any, dict[str, Any]]:
    params: dict[str, Any] = {
        "n_estimators": 200,
        "max_depth": 12,
        "min_samples_leaf": 2,
        "max_features": "sqrt",
        "max_samples": RF_MAX_ROWS_PER_TREE if len(data.X) > RF_MAX_ROWS_PER_TREE else None,
        "n_jobs": data.threads,
        "random_state": data.seed,
    }
    cls = RandomForestRegressor if data.task == "regression" else RandomForestClassifier
    model = cls(**params).fit(data.X, data.y, sample_weight=data.weight)
    # Threaded predict_proba sums the trees in a racy order (last-bit differences between
    # calls); predicting on one thread keeps predictions bit-identical, e.g. after a reload.
    model.set_params(n_jobs=1)
    return model, params


def _fit_xgboost(data: _Data) -> tuple[Any, dict[str, Any]]:
    params: dict[str, Any] = {
        "n_estimators": 300,
        "learning_rate": 0.1,
        "max_depth": 6,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "tree_method": "hist",
        "early_stopping_rounds": 20,
        "n_jobs": data.threads,
        "random_state": data.seed,
    }
    cls = XGBRegressor if data.task == "regression" else XGBClassifier
    model = cls(**params)
    model.fit(
        data.X,
        data.y,
        sample_weight=data.weight,
        eval_set=[(data.X_valid, data.y_valid)],
        verbose=False,
    )
    return model, {**params, "best_iteration": int(model.best_iteration)}


def _fit_neural_net(data: _Data) -> tuple[Any, dict[str, Any]]:
    # torch loads only when an MLP trains or loads: seconds off every process that does not
    import torch

    from retraining_assets.core.neural_net import MLPConfig, TorchMLP

    config = MLPConfig()
    model = TorchMLP(data.task, config, data.seed)
    previous = torch.get_num_threads()
    torch.set_num_threads(data.threads)
    try:
        model.fit(data.X, data.y, data.X_valid, data.y_valid, data.weight)
    finally:
        torch.set_num_threads(previous)
    params = {
        **{k: v for k, v in vars(config).items()},
        "hidden": list(config.hidden),
        "epochs_trained": model.epochs_trained,
        "best_epoch": model.best_epoch,
        "threads": data.threads,
        "seed": data.seed,
    }
    return model, params


_TRAINERS: dict[str, Callable[[_Data], tuple[Any, dict[str, Any]]]] = {
    "random_forest": _fit_random_forest,
    "xgboost": _fit_xgboost,
    "neural_net": _fit_neural_net,
}


def train_model(
    family: str,
    split: Split,
    spec: DatasetSpec,
    *,
    seed: int = 0,
    members: list[TrainedModel] | None = None,
) -> TrainedModel:
    """Train one family on ``split.train`` (early stopping and ensemble weights on
    ``split.valid``; the holdout is never touched). ``ensemble`` needs ``members``."""
    if family == "ensemble":
        return train_ensemble(members or [], split, spec)
    if family not in _TRAINERS:
        raise TrainingError(f"unknown model family {family!r}; choose from {list(FAMILIES)}")
    started = time.perf_counter()
    require_columns(split.train, (*spec.features, spec.target), "train part")
    classes = model_classes(spec, split.train[spec.target])
    y, y_valid = _targets(split.train, spec, classes), _targets(split.valid, spec, classes)
    present = np.unique(y) if spec.task != "regression" else np.zeros(0, dtype=np.int64)
    if spec.task != "regression":
        # Estimators see contiguous codes of the classes present in train; rows of the valid
        # part whose class never occurs in train cannot score early stopping and are left out.
        keep = np.isin(y_valid, present)
        if not keep.any():
            raise TrainingError("the valid part has no rows of the classes seen in training")
        y, y_valid = np.searchsorted(present, y), np.searchsorted(present, y_valid[keep])
    else:
        keep = np.ones(len(split.valid), dtype=bool)
    preprocessor = build_preprocessor(spec).fit(split.train)
    data = _Data(
        X=feature_matrix(preprocessor, split.train),
        y=y,
        X_valid=feature_matrix(preprocessor, split.valid)[keep],
        y_valid=y_valid,
        task=spec.task,
        seed=seed,
        threads=thread_count(),
        weight=split.train_weight,
    )
    estimator, params = _TRAINERS[family](data)
    params = {
        **params,
        "n_train": len(split.train),
        "n_valid": len(split.valid),
        "n_inputs": int(data.X.shape[1]),
    }
    scorer = FittedEstimator(preprocessor, estimator, spec.task, present, len(classes))
    return TrainedModel(
        family=family,
        task=spec.task,
        params=params,
        training_seconds=time.perf_counter() - started,
        classes=classes,
        features=spec.features,
        scorer=scorer,
    )


def train_ensemble(members: list[TrainedModel], split: Split, spec: DatasetSpec) -> TrainedModel:
    """Soft voting: a weighted mean of the members' probabilities (or regression predictions).

    Weights are proportional to 1 / validation loss (log loss for classification, MSE for
    regression), normalised to sum to 1. Inverse loss rewards the better members without
    letting one dominate, needs no extra fitting (so no extra data and no overfitting of a
    stacker), and averaging probabilities keeps calibration information that hard voting
    throws away. The valid part was also used for the members' early stopping, so the weights
    are slightly optimistic; the holdout, never seen here, is what judges the ensemble.
    """
    started = time.perf_counter()
    if not members:
        raise TrainingError("the ensemble needs at least one trained member model")
    first = members[0]
    mismatched = [m.family for m in members if (m.task, m.classes) != (first.task, first.classes)]
    if mismatched:
        raise TrainingError(f"ensemble members {mismatched} differ in task or classes")
    y_valid = _targets(split.valid, spec, first.classes) if first.classes else None
    losses = np.array([_validation_loss(m, split.valid, spec, y_valid) for m in members])
    inverse = 1.0 / np.maximum(losses, 1e-12)
    weights = inverse / inverse.sum()
    params = {
        "members": [m.family for m in members],
        "weights": {m.family: round(float(w), 6) for m, w in zip(members, weights, strict=True)},
        "validation_losses": {m.family: float(v) for m, v in zip(members, losses, strict=True)},
        "weighting": "inverse validation log loss" if first.classes else "inverse validation MSE",
    }
    return TrainedModel(
        family="ensemble",
        task=first.task,
        params=params,
        training_seconds=time.perf_counter() - started,
        classes=first.classes,
        features=tuple(dict.fromkeys(f for m in members for f in m.features)),
        scorer=SoftVote(list(members), weights),
    )


def _validation_loss(
    model: TrainedModel, valid: pd.DataFrame, spec: DatasetSpec, y_valid: np.ndarray | None
) -> float:
    if y_valid is None:
        return float(mean_squared_error(valid[spec.target].to_numpy(float), model.scores(valid)))
    labels = list(range(len(model.classes)))
    return float(log_loss(y_valid, model.scores(valid), labels=labels))


def train_candidates(
    split: Split,
    spec: DatasetSpec,
    families: Sequence[str] = FAMILIES,
    *,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, TrainedModel]:
    """Train every requested family; the base families first, the ensemble from them last."""
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise TrainingError(f"unknown model families {unknown}; choose from {list(FAMILIES)}")
    report = progress or (lambda _message: None)
    trained: dict[str, TrainedModel] = {}
    for family in [f for f in BASE_FAMILIES if f in families]:
        report(f"training {family}")
        trained[family] = train_model(family, split, spec, seed=seed)
        report(f"{family} trained in {trained[family].training_seconds:.2f}s")
    if "ensemble" in families:
        if not trained:
            raise TrainingError(
                f"the ensemble needs at least one of {list(BASE_FAMILIES)} in the families"
            )
        report("training ensemble")
        trained["ensemble"] = train_ensemble(list(trained.values()), split, spec)
    return trained


# --- fingerprints ------------------------------------------------------------------------
def data_fingerprint(frame: pd.DataFrame, spec: DatasetSpec) -> str:
    """SHA-256 of the spec's columns of ``frame``: same rows in any order -> same fingerprint.

    Row hashes are sorted so that a table read back in another order does not look new.
    """
    columns = [c for c in (spec.time_column, spec.target, *spec.features) if c in frame.columns]
    digest = hashlib.sha256(repr(columns).encode())
    rows = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
    digest.update(np.sort(rows).tobytes())
    return digest.hexdigest()
