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
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import joblib
import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.metrics import log_loss, mean_squared_error
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from xgboost import XGBClassifier, XGBRegressor

from retraining_assets.core.dataset import (
    DatasetSpec,
    Task,
    class_labels,
    label_strings,
)
from retraining_assets.core.splits import (  # the split is re-exported: trainers take it
    Split,
    TrainingError,
    require_columns,
    split_by_time,
    split_for_training,
)

__all__ = [
    "BASE_FAMILIES",
    "FAMILIES",
    "MAX_CATEGORIES",
    "MISSING_CATEGORY",
    "RF_MAX_ROWS_PER_TREE",
    "FittedEstimator",
    "MLPConfig",
    "Split",
    "TorchMLP",
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
MISSING_CATEGORY = "__missing__"
MAX_CATEGORIES = 20  # one-hot columns per feature; rarer levels share an "infrequent" column
RF_MAX_ROWS_PER_TREE = 50_000  # bounds forest cost on large tables; more rows add little


def thread_count() -> int:
    """Threads a trainer may use: ``OMP_NUM_THREADS`` when set, else 1."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1


# --- preprocessing ---------------------------------------------------------------------------
def _as_float(X: pd.DataFrame) -> pd.DataFrame:
    # Nullable integer columns (pd.NA) become float NaN, which SimpleImputer understands.
    return X.astype("float64")


def _as_strings(X: pd.DataFrame) -> pd.DataFrame:
    # One label type per column (bools, ints, pandas str dtype all become Python str) and one
    # missing marker (NaN), so the encoder never sees mixed types.
    return (
        X.apply(lambda column: column.map(str, na_action="ignore"))
        .astype(object)
        .where(X.notna(), np.nan)
    )


def build_preprocessor(spec: DatasetSpec) -> ColumnTransformer:
    """The one preprocessing pipeline shared by every family.

    Numeric: median imputation with missing-indicator columns, then standard scaling (the MLP
    needs it; trees are indifferent). Categorical: constant imputation, then one-hot with
    ``handle_unknown="ignore"`` (an unseen category becomes all zeros) and at most
    ``MAX_CATEGORIES`` columns per feature. One-hot rather than ordinal codes because the MLP
    cannot use arbitrary codes, and sharing one encoding keeps the families comparable; for
    trees the cost is a few more columns, which the category cap bounds.
    """
    transformers: list[tuple[str, Pipeline, list[str]]] = []
    if spec.numeric_features:
        numeric = make_pipeline(
            FunctionTransformer(_as_float, feature_names_out="one-to-one"),
            SimpleImputer(strategy="median", add_indicator=True),
            StandardScaler(),
        )
        transformers.append(("numeric", numeric, list(spec.numeric_features)))
    if spec.categorical_features:
        categorical = make_pipeline(
            FunctionTransformer(_as_strings, feature_names_out="one-to-one"),
            SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY),
            OneHotEncoder(
                handle_unknown="ignore",
                max_categories=MAX_CATEGORIES,
                sparse_output=False,
                dtype=np.float32,
            ),
        )
        transformers.append(("categorical", categorical, list(spec.categorical_features)))
    if not transformers:
        raise TrainingError("the spec has no features to train on")
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


def _matrix(preprocessor: ColumnTransformer, frame: pd.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(preprocessor.transform(frame), dtype=np.float32)


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


# --- the trained model -----------------------------------------------------------------------
class _Scorer(Protocol):
    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Probabilities (n, k) over the model's classes, or regression values (n,)."""
        ...


@dataclass
class _FittedEstimator:
    """A preprocessor plus an estimator trained on the classes present in the train part."""

    preprocessor: ColumnTransformer
    estimator: Any  # sklearn-style: predict_proba (classification) or predict (regression)
    task: Task
    present: np.ndarray  # indices (into the model's classes) the estimator was trained on
    n_classes: int

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        X = _matrix(self.preprocessor, frame)
        if self.task == "regression":
            return np.asarray(self.estimator.predict(X), dtype=np.float64)
        proba = np.zeros((len(frame), self.n_classes))
        raw = np.asarray(self.estimator.predict_proba(X), dtype=np.float64)
        # float32 outputs (XGBoost) sum to 1 only approximately; metrics expect exact rows.
        proba[:, self.present] = raw / raw.sum(axis=1, keepdims=True)
        return proba


# The public name; pickled artifacts refer to the class by its original name.
FittedEstimator = _FittedEstimator


@dataclass
class _SoftVote:
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
        return self.scorer if isinstance(self.scorer, _FittedEstimator) else None

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


# --- the torch MLP ---------------------------------------------------------------------------
@dataclass
class MLPConfig:
    hidden: tuple[int, int] = (64, 32)
    dropout: float = 0.1
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    batch_size: int = 256
    max_epochs: int = 50
    patience: int = 5


def _network(n_inputs: int, n_outputs: int, config: MLPConfig) -> torch.nn.Sequential:
    first, second = config.hidden
    return torch.nn.Sequential(
        torch.nn.Linear(n_inputs, first),
        torch.nn.ReLU(),
        torch.nn.Dropout(config.dropout),
        torch.nn.Linear(first, second),
        torch.nn.ReLU(),
        torch.nn.Linear(second, n_outputs),
    )


class TorchMLP:
    """A small MLP with an sklearn-like face. Inputs arrive standardised by the preprocessor;
    regression targets are standardised here. Pickles as a state_dict, not as a module."""

    def __init__(self, task: Task, config: MLPConfig, seed: int) -> None:
        self.task, self.config, self.seed = task, config, seed
        self.n_inputs = self.n_outputs = 0
        self.y_mean, self.y_std = 0.0, 1.0
        self.epochs_trained = self.best_epoch = 0
        self.net: torch.nn.Sequential | None = None

    def fit(self, X: np.ndarray, y: np.ndarray, X_valid: np.ndarray, y_valid: np.ndarray) -> None:
        regression = self.task == "regression"
        if regression:
            self.y_mean, self.y_std = float(y.mean()), float(y.std()) or 1.0
        self.n_inputs = X.shape[1]
        self.n_outputs = 1 if regression else int(y.max()) + 1
        loss_fn = torch.nn.MSELoss() if regression else torch.nn.CrossEntropyLoss()
        x_train, y_train = torch.from_numpy(X), self._target_tensor(y)
        x_valid, y_valid_t = torch.from_numpy(X_valid), self._target_tensor(y_valid)
        # fork_rng: fixed seeds for init, dropout and shuffling without touching the caller's RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = _network(self.n_inputs, self.n_outputs, self.config)
            optimiser = torch.optim.Adam(
                net.parameters(),
                lr=self.config.learning_rate,
                weight_decay=self.config.weight_decay,
            )
            best_loss, best_state, stale = float("inf"), net.state_dict(), 0
            for epoch in range(1, self.config.max_epochs + 1):
                net.train()
                for batch in torch.randperm(len(x_train)).split(self.config.batch_size):
                    optimiser.zero_grad()
                    loss_fn(self._forward(net, x_train[batch]), y_train[batch]).backward()
                    optimiser.step()
                net.eval()
                with torch.no_grad():
                    valid_loss = float(loss_fn(self._forward(net, x_valid), y_valid_t))
                self.epochs_trained = epoch
                if valid_loss < best_loss - 1e-6:
                    best_loss, stale, self.best_epoch = valid_loss, 0, epoch
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                else:
                    stale += 1
                    if stale >= self.config.patience:
                        break
            net.load_state_dict(best_state)
        self.net = net.eval()

    def _target_tensor(self, y: np.ndarray) -> torch.Tensor:
        if self.task == "regression":
            return torch.from_numpy(((y - self.y_mean) / self.y_std).astype(np.float32))
        return torch.from_numpy(y.astype(np.int64))

    def _forward(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        out = net(x)
        return out.squeeze(1) if self.task == "regression" else out

    def _outputs(self, X: np.ndarray) -> np.ndarray:
        assert self.net is not None, "TorchMLP used before fit"
        with torch.no_grad():
            return self._forward(self.net, torch.from_numpy(X)).numpy().astype(np.float64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logits = self._outputs(X)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._outputs(X) * self.y_std + self.y_mean

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        net = state.pop("net")
        state["weights"] = (
            None if net is None else {k: v.numpy() for k, v in net.state_dict().items()}
        )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("weights")
        self.__dict__.update(state, net=None)
        if weights is not None:
            net = _network(self.n_inputs, self.n_outputs, self.config)
            net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
            self.net = net.eval()


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
    model = cls(**params).fit(data.X, data.y)
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
    model.fit(data.X, data.y, eval_set=[(data.X_valid, data.y_valid)], verbose=False)
    return model, {**params, "best_iteration": int(model.best_iteration)}


def _fit_neural_net(data: _Data) -> tuple[Any, dict[str, Any]]:
    config = MLPConfig()
    model = TorchMLP(data.task, config, data.seed)
    previous = torch.get_num_threads()
    torch.set_num_threads(data.threads)
    try:
        model.fit(data.X, data.y, data.X_valid, data.y_valid)
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
        X=_matrix(preprocessor, split.train),
        y=y,
        X_valid=_matrix(preprocessor, split.valid)[keep],
        y_valid=y_valid,
        task=spec.task,
        seed=seed,
        threads=thread_count(),
    )
    estimator, params = _TRAINERS[family](data)
    params = {
        **params,
        "n_train": len(split.train),
        "n_valid": len(split.valid),
        "n_inputs": int(data.X.shape[1]),
    }
    scorer = _FittedEstimator(preprocessor, estimator, spec.task, present, len(classes))
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
        scorer=_SoftVote(list(members), weights),
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


# --- persistence and fingerprints ------------------------------------------------------------
def model_to_bytes(model: TrainedModel) -> bytes:
    """An uncompressed pickle (joblib) of the model, as MLflow stores scikit-learn models: zlib
    made every registration and load of a forest ~4x slower for a 3.5x smaller file. Torch
    weights travel as a state_dict.

    Loading runs pickle: load only artifacts whose SHA-256 the registry has verified.
    """
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=0)
    return buffer.getvalue()


def model_from_bytes(data: bytes) -> TrainedModel:
    try:
        model = joblib.load(io.BytesIO(data))
    except Exception as error:  # any unpickling failure means a corrupt or foreign artifact
        raise TrainingError(f"model artifact cannot be loaded: {error}") from error
    if not isinstance(model, TrainedModel):
        raise TrainingError(f"model artifact holds a {type(model).__name__}, not a TrainedModel")
    return model


def data_fingerprint(frame: pd.DataFrame, spec: DatasetSpec) -> str:
    """SHA-256 of the spec's columns of ``frame``: same rows in any order -> same fingerprint.

    Row hashes are sorted so that a table read back in another order does not look new.
    """
    columns = [c for c in (spec.time_column, spec.target, *spec.features) if c in frame.columns]
    digest = hashlib.sha256(repr(columns).encode())
    rows = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
    digest.update(np.sort(rows).tobytes())
    return digest.hexdigest()
