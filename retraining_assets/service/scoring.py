"""Scoring a served model on a few rows, fast: its own fitted preprocessing and trees compiled
into numpy lookups once at load, checked against ``TrainedModel.scores`` before use.

Why: ``TrainedModel.scores`` costs ~27 ms for one row of the demo's random forest on one core,
almost all of it fixed overhead (~7 ms in the ColumnTransformer and pandas, ~18 ms in the
forest's per-tree joblib dispatch), which no micro-batch can hide under a 50 ms p99. The
compiled path reads the fitted statistics (imputer, scaler), tabulates each categorical
feature's one-hot rows by running the model's own encoder on every known category (plus a
missing and an unseen value), and walks the forest's trees with ``Tree.apply`` and per-leaf
class fractions, in the forest's own summation order. Nothing is re-fitted or re-decided: a
model the compiler does not recognise (the torch MLP, the ensemble, another preprocessing), or
whose compiled scores differ from its own on probe rows, is scored by ``TrainedModel.scores``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Protocol

import numpy as np
import pandas as pd

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.training import TrainedModel

Columns = Mapping[str, np.ndarray]  # numeric: float64 with NaN; categorical: object with None
UNSEEN = "\x00unseen\x00"  # a category no model was trained on
PROBE_ROWS = 96
TOLERANCE = 1e-9  # compiled vs own scores; the same arithmetic in the same order gives 0


class Scorer(Protocol):
    """Scores of a batch of rows given as columns (probabilities (n, k) or values (n,))."""

    description: str

    def scores(self, columns: Columns) -> np.ndarray: ...


@dataclass(frozen=True)
class FrameScorer:
    """The model's own ``scores`` on a DataFrame of the columns: always right, slower."""

    model: TrainedModel
    description: str = "model.scores"

    def scores(self, columns: Columns) -> np.ndarray:
        return self.model.scores(
            pd.DataFrame({name: columns[name] for name in self.model.features})
        )


@dataclass(frozen=True)
class CompiledScorer:
    """Compiled preprocessing and estimator, then the model's own class bookkeeping."""

    preprocess: Callable[[Columns, int], np.ndarray]
    predict: Callable[[np.ndarray], np.ndarray]  # probabilities of present classes, or values
    task: str
    present: np.ndarray
    n_classes: int
    description: str

    def scores(self, columns: Columns) -> np.ndarray:
        n = len(next(iter(columns.values()))) if columns else 0
        if n == 0:
            return np.zeros((0, self.n_classes)) if self.n_classes else np.zeros(0)
        X = self.preprocess(columns, n)
        if self.task == "regression":
            return np.asarray(self.predict(X), dtype=np.float64)
        # as core.trained_model.FittedEstimator.scores: present classes, rows renormalised
        proba = np.zeros((n, self.n_classes))
        raw = np.asarray(self.predict(X), dtype=np.float64)
        proba[:, self.present] = raw / raw.sum(axis=1, keepdims=True)
        return proba


def scorer_for(model: TrainedModel, spec: DatasetSpec) -> tuple[Scorer, str | None]:
    """The fastest scorer that scores exactly like ``model``, and why it is not the compiled
    one (None when it is)."""
    try:
        compiled = _compile(model)
    except _NotCompilable as reason:
        return FrameScorer(model), str(reason)
    probe = probe_columns(model, spec)
    own = model.scores(pd.DataFrame(probe))
    try:
        fast = compiled.scores(probe)
    except Exception as error:  # a compiler gap must cost speed, never a prediction
        return FrameScorer(model), f"compiled scorer failed on probe rows: {error}"
    if fast.shape != own.shape or not np.allclose(fast, own, rtol=0, atol=TOLERANCE):
        gap = np.max(np.abs(fast - own)) if fast.shape == own.shape else fast.shape
        return FrameScorer(model), f"compiled scores differ from the model's ({gap})"
    return compiled, None


# --- compiling ----------------------------------------------------------------------------


class _NotCompilable(Exception):
    """The model is not one the compiler knows; it is scored by its own ``scores``."""


def _compile(model: TrainedModel) -> CompiledScorer:
    fitted = model.fitted
    if fitted is None:
        raise _NotCompilable(f"{model.family}: no single preprocessor and estimator")
    preprocess = _compile_preprocessor(fitted.preprocessor)
    predict, name = _compile_estimator(fitted.estimator, model.task)
    return CompiledScorer(
        preprocess=preprocess,
        predict=predict,
        task=model.task,
        present=np.asarray(fitted.present),
        n_classes=fitted.n_classes,
        description=f"compiled ({name})",
    )


def _compile_preprocessor(preprocessor: Any) -> Callable[[Columns, int], np.ndarray]:
    from sklearn.compose import ColumnTransformer

    if not isinstance(preprocessor, ColumnTransformer):
        raise _NotCompilable(f"preprocessor is a {type(preprocessor).__name__}")
    width = sum(s.stop - s.start for s in preprocessor.output_indices_.values())
    parts: list[tuple[slice, Callable[[Columns, int], np.ndarray]]] = []
    for name, pipeline, columns in preprocessor.transformers_:
        if name == "remainder" and pipeline == "drop":
            continue
        where = preprocessor.output_indices_[name]
        if name == "numeric":
            parts.append((where, _Numeric.compile(pipeline, list(columns))))
        elif name == "categorical":
            parts.append((where, _Categorical.compile(pipeline, list(columns))))
        else:
            raise _NotCompilable(f"unknown preprocessing step {name!r}")

    def preprocess(columns: Columns, n: int) -> np.ndarray:
        X = np.empty((n, width), dtype=np.float32)
        for where, part in parts:
            X[:, where] = part(columns, n)
        return X

    return preprocess


@dataclass(frozen=True)
class _Numeric:
    """Imputation (with missing indicators) and standard scaling, from the fitted statistics."""

    columns: list[str]
    statistics: np.ndarray  # per kept column
    kept: np.ndarray  # columns with a statistic (all-missing ones are dropped)
    indicators: np.ndarray  # columns with a missing-indicator output
    mean: np.ndarray | None
    scale: np.ndarray | None

    @classmethod
    def compile(cls, pipeline: Any, columns: list[str]) -> _Numeric:
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import FunctionTransformer, StandardScaler

        steps = [step for _, step in pipeline.steps]
        kinds = [FunctionTransformer, SimpleImputer, StandardScaler]
        if len(steps) != 3 or not all(isinstance(s, k) for s, k in zip(steps, kinds, strict=True)):
            raise _NotCompilable("numeric preprocessing is not cast, impute, scale")
        cast, imputer, scaler = steps
        if getattr(cast.func, "__name__", "") != "_as_float" or not _is_nan(imputer.missing_values):
            raise _NotCompilable("numeric preprocessing: unknown cast or missing marker")
        statistics = np.asarray(imputer.statistics_, dtype=np.float64)
        kept = np.flatnonzero(~np.isnan(statistics))
        if imputer.keep_empty_features and len(kept) != len(statistics):
            raise _NotCompilable("numeric preprocessing keeps empty features")
        indicator = getattr(imputer, "indicator_", None)
        indicators = np.asarray(indicator.features_ if indicator is not None else [], dtype=int)
        return cls(
            columns=columns,
            statistics=statistics[kept],
            kept=kept,
            indicators=indicators,
            mean=np.asarray(scaler.mean_) if scaler.with_mean else None,
            scale=np.asarray(scaler.scale_) if scaler.with_std else None,
        )

    def __call__(self, columns: Columns, n: int) -> np.ndarray:
        X = np.empty((n, len(self.columns)), dtype=np.float64)
        for j, name in enumerate(self.columns):
            X[:, j] = columns[name]
        missing = np.isnan(X)
        imputed = np.where(missing[:, self.kept], self.statistics, X[:, self.kept])
        out = np.hstack([imputed, missing[:, self.indicators]]) if len(self.indicators) else imputed
        if self.mean is not None:
            out -= self.mean
        if self.scale is not None:
            out /= self.scale
        return out


@dataclass(frozen=True)
class _Categorical:
    """One-hot rows per category, tabulated by the model's own categorical pipeline."""

    columns: list[str]
    lookups: list[dict[str | None, int]]  # category (None: missing) -> row of its table
    tables: list[np.ndarray]  # per feature: one row per category, then missing, then unseen
    outputs: list[np.ndarray]  # per feature: its output columns within the categorical block
    width: int

    @classmethod
    def compile(cls, pipeline: Any, columns: list[str]) -> _Categorical:
        from sklearn.preprocessing import OneHotEncoder

        encoder = pipeline.steps[-1][1]
        cast = pipeline.steps[0][1]
        if not isinstance(encoder, OneHotEncoder) or encoder.handle_unknown != "ignore":
            raise _NotCompilable("categorical preprocessing is not a one-hot encoder (ignore)")
        if getattr(getattr(cast, "func", None), "__name__", "") != "_as_strings":
            raise _NotCompilable("categorical preprocessing: unknown cast")
        known = [[str(c) for c in categories] for categories in encoder.categories_]
        base = {name: values[0] for name, values in zip(columns, known, strict=True)}
        lookups, tables, outputs, width = [], [], [], 0
        for name, values in zip(columns, known, strict=True):
            probe = pd.DataFrame(
                {other: [base[other]] * (len(values) + 2) for other in columns}, dtype=object
            )
            probe[name] = [*values, None, UNSEEN]
            out = np.asarray(pipeline.transform(probe), dtype=np.float32)
            width = out.shape[1]
            varying = np.flatnonzero((out != out[-1]).any(axis=0))
            lookups.append({**{value: i for i, value in enumerate(values)}, None: len(values)})
            tables.append(np.ascontiguousarray(out[:, varying]))
            outputs.append(varying)
        placed = np.concatenate(outputs) if outputs else np.zeros(0, dtype=int)
        if len(placed) != len(set(placed.tolist())) or len(placed) > width:
            raise _NotCompilable("categorical outputs overlap")
        return cls(columns, lookups, tables, outputs, width)

    def __call__(self, columns: Columns, n: int) -> np.ndarray:
        out = np.zeros((n, self.width), dtype=np.float32)
        for name, lookup, table, where in zip(
            self.columns, self.lookups, self.tables, self.outputs, strict=True
        ):
            # dict.get mapped in C: ~4x a generator; None (missing) is a key of the lookup
            found = map(lookup.get, columns[name], repeat(len(table) - 1))
            out[:, where] = table[np.fromiter(found, dtype=np.intp, count=n)]
        return out


def _compile_estimator(estimator: Any, task: str) -> tuple[Callable[[np.ndarray], Any], str]:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    if isinstance(estimator, RandomForestClassifier | RandomForestRegressor):
        if getattr(estimator, "n_outputs_", 1) != 1:
            raise _NotCompilable("multi-output forest")
        forest = _Forest.compile(estimator, task)
        how = "numba complete trees" if forest.complete is not None else "Tree.apply"
        return forest, f"random forest, {how}"
    if task == "regression":
        return estimator.predict, f"{type(estimator).__name__}.predict"
    return estimator.predict_proba, f"{type(estimator).__name__}.predict_proba"


@dataclass(frozen=True)
class _Forest:
    """A forest's average of per-tree leaf values, as sklearn computes it with one thread:
    each tree's leaf class counts normalised to fractions, summed in tree order, divided.

    With numba, the trees are laid out as complete binary trees (a leaf above the deepest level
    repeated below itself) so a row descends without branches, 16 rows interleaved per tree
    (their independent memory reads overlap): ~2x ``Tree.apply`` on 5k rows, ~15x on one.
    Otherwise ``Tree.apply`` per tree. Both add the trees in the same order: identical sums.
    """

    trees: list[Any]  # sklearn Tree objects
    leaves: list[np.ndarray]  # per tree: node -> class fractions (k) or value (1)
    width: int  # classes of the forest (0: regression)
    complete: _CompleteForest | None

    @classmethod
    def compile(cls, forest: Any, task: str) -> _Forest:
        trees, leaves = [], []
        width = 0 if task == "regression" else int(forest.n_classes_)
        for member in forest.estimators_:
            tree = member.tree_
            value = np.asarray(tree.value)  # (nodes, outputs, classes)
            if task == "regression":
                leaves.append(np.ascontiguousarray(value[:, 0, :1]))
            else:
                fractions = value[:, 0, : member.n_classes_].copy()
                normaliser = fractions.sum(axis=1)[:, np.newaxis]
                normaliser[normaliser == 0.0] = 1.0
                fractions /= normaliser
                leaves.append(fractions)
            trees.append(tree)
        return cls(trees, leaves, width, _CompleteForest.compile(trees, leaves))

    def __call__(self, X: np.ndarray) -> np.ndarray:
        out = np.zeros((X.shape[0], max(self.width, 1)))
        if self.complete is not None and not np.isnan(X).any():  # NaN: sklearn's own rules
            self.complete.accumulate(X, out)
        else:
            for tree, leaf in zip(self.trees, self.leaves, strict=True):
                out += leaf[tree.apply(X)]
        out /= len(self.trees)
        return out if self.width else out[:, 0]


@dataclass(frozen=True)
class _CompleteForest:
    """Every tree as a complete binary tree of one depth: node i's children are 2i+1, 2i+2."""

    depth: int
    features: np.ndarray  # (trees, 2**depth - 1) feature of each inner node
    thresholds: np.ndarray  # (trees, 2**depth - 1) go right when x > threshold
    values: np.ndarray  # (trees, 2**depth, k) leaf values
    kernel: Callable[..., None]

    @classmethod
    def compile(cls, trees: list[Any], leaves: list[np.ndarray]) -> _CompleteForest | None:
        kernel = _forest_kernel()
        depth = max(int(tree.max_depth) for tree in trees)
        size = len(trees) * 2**depth * (16 + 8 * leaves[0].shape[1])
        if kernel is None or depth > MAX_COMPLETE_DEPTH or size > MAX_COMPLETE_BYTES:
            return None
        inner = 2**depth - 1
        features = np.zeros((len(trees), inner), dtype=np.int64)
        thresholds = np.zeros((len(trees), inner))
        values = np.zeros((len(trees), 2**depth, leaves[0].shape[1]))
        for t, (tree, leaf) in enumerate(zip(trees, leaves, strict=True)):
            left, right = tree.children_left, tree.children_right
            nodes = np.zeros(1, dtype=np.int64)  # the sklearn node at each position of a level
            for level in range(depth):
                is_leaf = left[nodes] == -1  # a leaf repeats below itself: both ways lead to it
                first = 2**level - 1
                features[t, first : first + len(nodes)] = np.where(is_leaf, 0, tree.feature[nodes])
                thresholds[t, first : first + len(nodes)] = np.where(
                    is_leaf, 0.0, tree.threshold[nodes]
                )
                below = (
                    np.where(is_leaf, nodes, left[nodes]),
                    np.where(is_leaf, nodes, right[nodes]),
                )
                nodes = np.column_stack(below).ravel()
            values[t] = leaf[nodes]
        return cls(depth, features, thresholds, values, kernel)

    def accumulate(self, X: np.ndarray, out: np.ndarray) -> None:
        self.kernel(X, self.features, self.thresholds, self.values, self.depth, out)


MAX_COMPLETE_DEPTH = 20
MAX_COMPLETE_BYTES = 512 * 2**20
INTERLEAVE = 16  # rows descending a tree together


def _complete_forest_loop(
    X: np.ndarray,
    features: np.ndarray,
    thresholds: np.ndarray,
    values: np.ndarray,
    depth: int,
    out: np.ndarray,
) -> None:
    """numba source: add each tree's leaf values to ``out``, tree after tree (sklearn's order).

    sklearn goes left when ``x <= threshold`` (x float32 widened to float64, as here)."""
    n, k = X.shape[0], out.shape[1]
    inner = 2**depth - 1
    nodes = np.zeros(INTERLEAVE, np.int64)
    for t in range(features.shape[0]):
        feature, threshold, value = features[t], thresholds[t], values[t]
        for start in range(0, n, INTERLEAVE):
            m = min(INTERLEAVE, n - start)
            nodes[:m] = 0
            for _ in range(depth):
                for b in range(m):
                    node = nodes[b]
                    nodes[b] = 2 * node + 1 + (X[start + b, feature[node]] > threshold[node])
            for b in range(m):
                leaf = nodes[b] - inner
                for j in range(k):
                    out[start + b, j] += value[leaf, j]


_KERNEL: list[Callable[..., None] | None] = []  # compiled once per process, lazily


def _forest_kernel() -> Callable[..., None] | None:
    if not _KERNEL:
        try:
            import numba
        except ImportError:
            _KERNEL.append(None)
        else:
            _KERNEL.append(numba.njit(cache=True, nogil=True)(_complete_forest_loop))
    return _KERNEL[0]


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


# --- probing ------------------------------------------------------------------------------


def probe_columns(model: TrainedModel, spec: DatasetSpec, n: int = PROBE_ROWS) -> dict:
    """Rows that exercise a model: numbers around each feature's fitted centre and far out,
    missing values, every known category, an unseen one (seeded, the same every load)."""
    rng = np.random.default_rng(0)
    centres, spreads = _numeric_centres(model)
    columns: dict[str, np.ndarray] = {}
    for name in spec.numeric_features:
        centre, spread = centres.get(name, 0.0), spreads.get(name, 1.0)
        values = centre + spread * rng.normal(0.0, 2.0, n)
        values[rng.random(n) < 0.1] = np.nan
        values[0] = centre
        columns[name] = values
    categories = _known_categories(model)
    for name in spec.categorical_features:
        choices = [*categories.get(name, []), None, UNSEEN, "nan"]
        picks = [choices[i % len(choices)] for i in range(n)]
        order = rng.permutation(n)
        columns[name] = np.asarray([picks[i] for i in order], dtype=object)
    return columns


def _numeric_centres(model: TrainedModel) -> tuple[dict[str, float], dict[str, float]]:
    try:
        pipeline = model.scorer.preprocessor.named_transformers_["numeric"]
        columns = [c for name, _, c in model.scorer.preprocessor.transformers_ if name == "numeric"]
        imputer, scaler = pipeline.steps[1][1], pipeline.steps[2][1]
        names = list(columns[0])
        centres = dict(zip(names, np.nan_to_num(imputer.statistics_).tolist(), strict=True))
        spreads = dict(zip(names, scaler.scale_[: len(names)].tolist(), strict=True))
        return centres, spreads
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        return {}, {}


def _known_categories(model: TrainedModel) -> dict[str, list[str]]:
    try:
        preprocessor = model.scorer.preprocessor
        pipeline = preprocessor.named_transformers_["categorical"]
        columns = next(c for name, _, c in preprocessor.transformers_ if name == "categorical")
        encoder = pipeline.steps[-1][1]
        return {
            name: [str(c) for c in cats]
            for name, cats in zip(columns, encoder.categories_, strict=True)
        }
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        return {}
