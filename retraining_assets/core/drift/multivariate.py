"""Multivariate drift: can a small classifier tell current rows from reference rows?

A domain classifier (sklearn's ``HistGradientBoostingClassifier``, 50 iterations, no early
stopping, seeded) is cross-fitted on a seeded balanced sample of both sides (at most
``max_rows`` per side): three cyclic folds, each scored by the model trained on the other two.
Its AUC is the fold-weighted Mann-Whitney AUC of the out-of-fold scores, and the p-value is
one-sided from the sum of the folds' U statistics (normal approximation with tie
correction): under no drift every fold's held-out labels are exchangeable given its model.
A significant AUC below ``min_auc`` does not alarm: on huge samples a trivial difference is
significant. Importances: the AUC lost when one feature is permuted in the held-out folds,
normalised to sum to 1. The reconstruction score is in ``reconstruction``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import rankdata

from retraining_assets.core.dataset import is_numeric_dtype
from retraining_assets.core.drift.columns import CategoricalProfile, ColumnProfile, DriftInputError
from retraining_assets.core.drift.reconstruction import MAX_ROWS as RECONSTRUCTION_ROWS
from retraining_assets.core.drift.reconstruction import ReconstructionDrift, reconstruction_drift
from retraining_assets.core.permutation_batches import MAX_BATCH_CELLS, feature_batches

MAX_ROWS = 20_000  # per side; the seeded cap that keeps 1M x 25 within seconds
MIN_ROWS = 50  # per side: three folds need a few rows of each side
FOLDS = 3
IMPORTANCE_ROWS = 1_000  # held-out rows per fold used to permute a feature
MAX_CATEGORIES = 250  # HistGradientBoosting's categorical features need < 255 codes

__all__ = [
    "ClassifierDrift",
    "MultivariateDrift",
    "ReconstructionDrift",
    "classifier_drift",
    "encode_profiled",
    "encode_rows",
    "multivariate_drift",
    "profile_drift",
]

NO_SAMPLE = (
    "reference profile has no row sample (fitted before profile format 2, or with "
    "sample_rows=0); refit"
)


@dataclass(frozen=True)
class ClassifierDrift:
    """The domain classifier's verdict: ``auc`` is the cross-fitted ROC AUC of telling
    current (1) from reference (0) rows, ``p_value`` its seeded one-sided null p-value."""

    auc: float
    p_value: float
    drifted: bool  # p_value < alpha and auc >= min_auc
    importances: dict[str, float]  # feature -> share of the AUC it explains, largest first
    rows: int  # rows used per side after the seeded cap
    skipped: str | None = None  # why it was not computed, else None

    @classmethod
    def skip(cls, reason: str, rows: int = 0) -> ClassifierDrift:
        return cls(math.nan, math.nan, False, {}, rows, reason)


@dataclass(frozen=True)
class MultivariateDrift:
    """Both dataset scores of one comparison."""

    classifier: ClassifierDrift
    reconstruction: ReconstructionDrift

    @property
    def drifted(self) -> bool:
        return self.classifier.drifted or self.reconstruction.drifted

    def to_dict(self) -> dict[str, Any]:
        return {
            "classifier": asdict(self.classifier),
            "reconstruction": asdict(self.reconstruction),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MultivariateDrift:
        def num(value: Any) -> float:  # JSON stores NaN as null
            return math.nan if value is None else float(value)

        c, r = data["classifier"], data["reconstruction"]
        return cls(
            ClassifierDrift(
                num(c["auc"]), num(c["p_value"]), bool(c["drifted"]),
                {str(k): float(v) for k, v in c["importances"].items()}, int(c["rows"]),
                c.get("skipped"),
            ),
            ReconstructionDrift(
                num(r["error"]), num(r["lower"]), num(r["upper"]), bool(r["drifted"]),
                r.get("skipped"),
            ),
        )  # fmt: skip

    @classmethod
    def skip(cls, reason: str) -> MultivariateDrift:
        return cls(ClassifierDrift.skip(reason), ReconstructionDrift.skip(reason))


# --------------------------------------------------------------------------- encoding


def encode_rows(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    categorical: Sequence[Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Both frames as float matrices with the same columns: numeric values as they are
    (nulls NaN, ±inf clipped to the float range), categorical ones as codes of the reference's
    categories, most frequent first (rarer and unseen ones share the last code; nulls NaN).
    Returns ``(reference, current, is_categorical mask, column names)``."""
    missing = [str(c) for c in reference.columns if c not in current.columns]
    if missing:
        raise DriftInputError(f"columns missing from the current frame: {missing}")
    columns = list(reference.columns)
    if categorical is None:
        categorical = [c for c in columns if not is_numeric_dtype(reference[c].dtype)]
    cat = set(categorical)
    ref = np.empty((len(reference), len(columns)), dtype=np.float64)
    cur = np.empty((len(current), len(columns)), dtype=np.float64)
    for j, name in enumerate(columns):
        if name in cat:
            ref[:, j], cur[:, j] = _category_codes(reference[name], current[name])
        else:
            ref[:, j] = _numeric(reference[name], name)
            cur[:, j] = _numeric(current[name], name)
    return ref, cur, np.array([c in cat for c in columns], dtype=bool), [str(c) for c in columns]


def _numeric(values: pd.Series, name: Any, coerce: bool = False) -> np.ndarray:
    """``coerce``: unparseable values become nulls instead of an error (a current month the
    univariate tests already report as not testable must not lose the rest of the report)."""
    try:
        numbers = pd.to_numeric(values, errors="coerce" if coerce else "raise")
        out = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise DriftInputError(f"column {name!r} is not numeric: {exc}") from exc
    big = np.finfo(np.float32).max  # the trees bin in float; keep infinities extreme, finite
    return np.clip(out, -big, big)


def _category_codes(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    ref = reference.astype("string")
    counts = ref.value_counts(dropna=True)
    kept = list(counts.index[: MAX_CATEGORIES - 1])
    lookup = {label: float(k) for k, label in enumerate(kept)}
    other = float(len(kept))

    def codes(values: pd.Series) -> np.ndarray:
        text = values.astype("string")
        out = text.map(lookup).astype("float64").to_numpy(na_value=np.nan, copy=True)
        out[np.isnan(out) & text.notna().to_numpy()] = other
        return out

    return codes(ref), codes(current)


def encode_profiled(columns: Mapping[Any, ColumnProfile], frame: pd.DataFrame) -> np.ndarray:
    """``frame``'s feature columns as a float matrix in the profile's terms: numeric values
    as in :func:`encode_rows`, categorical ones as the index of their category in the
    profile's kept categories (``str`` form, as the univariate tests compare them), every
    other category one code, nulls NaN. The reference row sample is stored this way."""
    out = np.empty((len(frame), len(columns)), dtype=np.float64)
    for j, (name, prof) in enumerate(columns.items()):
        if isinstance(prof, CategoricalProfile):
            codes, uniques = pd.factorize(frame[name], use_na_sentinel=True)
            index = {label: k for k, label in enumerate(prof.categories[: MAX_CATEGORIES - 1])}
            other = float(min(len(prof.categories), MAX_CATEGORIES - 1))
            lookup = np.array([index.get(str(v), other) for v in uniques] + [np.nan])
            out[:, j] = lookup[codes]  # the sentinel -1 picks the trailing NaN
        else:
            out[:, j] = _numeric(frame[name], name, coerce=True)
    return out


def profile_drift(
    sample: np.ndarray | None,
    columns: Mapping[Any, ColumnProfile],
    current: pd.DataFrame,
    *,
    seed: int = 0,
    alpha: float = 0.05,
    min_auc: float = 0.55,
    max_rows: int = MAX_ROWS,
) -> MultivariateDrift:
    """:func:`multivariate_drift` of ``current`` against a profile's stored row sample
    (``encode_profiled`` rows); both parts skipped with the reason when there is none."""
    if sample is None:
        return MultivariateDrift.skip(NO_SAMPLE)
    is_cat = np.array([isinstance(p, CategoricalProfile) for p in columns.values()], dtype=bool)
    cap = max(max_rows, RECONSTRUCTION_ROWS)  # encode no more rows than either part reads
    if len(current) > cap:
        rows = np.random.default_rng([seed, 3]).choice(len(current), cap, replace=False)
        current = current.iloc[np.sort(rows)]
    cur = encode_profiled(columns, current)
    names = [str(c) for c in columns]
    classifier = classifier_drift(
        sample, cur, is_cat, names, seed=seed, alpha=alpha, min_auc=min_auc, max_rows=max_rows
    )
    return MultivariateDrift(classifier, reconstruction_drift(sample, cur, is_cat, seed=seed))


# --------------------------------------------------------------------------- classifier


def _balanced_sample(
    n_ref: int, n_cur: int, max_rows: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    n = min(n_ref, n_cur, max_rows)
    return rng.choice(n_ref, n, replace=False), rng.choice(n_cur, n, replace=False)


def _u_statistic(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """Mann-Whitney U of the positives' scores, its null mean and tie-corrected variance."""
    ranks = rankdata(scores)
    n1 = int(labels.sum())
    n0 = labels.size - n1
    u = float(ranks[labels == 1].sum() - n1 * (n1 + 1) / 2)
    n = n0 + n1
    _, ties = np.unique(ranks, return_counts=True)
    tie_term = float((ties**3 - ties).sum()) / (n * (n - 1)) if n > 1 else 0.0
    variance = n0 * n1 / 12 * ((n + 1) - tie_term)
    return u, n0 * n1 / 2, variance


def _model(seed: int, categorical: np.ndarray) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier  # sklearn loads in ~0.5 s

    return HistGradientBoostingClassifier(
        max_iter=50,
        learning_rate=0.1,
        max_leaf_nodes=15,
        early_stopping=False,
        categorical_features=categorical if categorical.any() else None,
        random_state=seed,
    )


def _auc(u: float, n0: int, n1: int) -> float:
    return u / (n0 * n1) if n0 and n1 else math.nan


def classifier_drift(
    reference: np.ndarray,
    current: np.ndarray,
    categorical: np.ndarray,
    names: Sequence[str],
    *,
    seed: int = 0,
    alpha: float = 0.05,
    min_auc: float = 0.55,
    max_rows: int = MAX_ROWS,
    importances: bool = True,
) -> ClassifierDrift:
    """The domain classifier on two encoded matrices (see :func:`encode_rows`)."""
    rng = np.random.default_rng(seed)
    n = min(len(reference), len(current), max_rows)
    if n < MIN_ROWS:
        return ClassifierDrift.skip(
            f"too few rows: reference {len(reference)}, current {len(current)} "
            f"(the domain classifier needs at least {MIN_ROWS} per side)",
            rows=n,
        )
    ref_idx, cur_idx = _balanced_sample(len(reference), len(current), max_rows, rng)
    x = np.vstack([reference[ref_idx], current[cur_idx]])
    y = np.repeat(np.array([0, 1], dtype=np.int8), n)
    # cyclic folds within each side (balanced folds), over a seeded order
    fold = np.concatenate([rng.permutation(n) % FOLDS, rng.permutation(n) % FOLDS])
    u_sum = mean_sum = var_sum = 0.0
    pairs = 0
    drops = np.zeros(len(names))
    for k in range(FOLDS):
        train, test = fold != k, fold == k
        model = _model(seed + k, categorical).fit(x[train], y[train])
        scores = model.predict_proba(x[test])[:, 1]
        u, mean, var = _u_statistic(scores, y[test])
        n1 = int(y[test].sum())
        n0 = int(test.sum()) - n1
        u_sum, mean_sum, var_sum, pairs = u_sum + u, mean_sum + mean, var_sum + var, pairs + n0 * n1
        if importances:
            drops += _permutation_drops(model, x[test], y[test], _auc(u, n0, n1), rng)
    auc = u_sum / pairs
    z = (u_sum - mean_sum) / math.sqrt(var_sum) if var_sum > 0 else 0.0
    p_value = float(stats.norm.sf(z))
    return ClassifierDrift(
        auc=float(auc),
        p_value=p_value,
        drifted=bool(p_value < alpha and auc >= min_auc),
        importances=_normalised(drops, names),
        rows=n,
    )


def _permutation_drops(
    model: Any, x: np.ndarray, y: np.ndarray, auc: float, rng: np.random.Generator
) -> np.ndarray:
    """AUC lost per feature when it is shuffled among (a seeded subset of) the held-out rows."""
    if len(y) > IMPORTANCE_ROWS:
        keep = rng.choice(len(y), IMPORTANCE_ROWS, replace=False)
        x, y = x[keep], y[keep]
        u, _, _ = _u_statistic(model.predict_proba(x)[:, 1], y)
        auc = _auc(u, int((y == 0).sum()), int(y.sum()))
    n1, n0 = int(y.sum()), int((y == 0).sum())
    # the shuffled copies of as many features as fit in MAX_BATCH_CELLS in one matrix: one
    # predict call per batch instead of one per feature (each call pays a fixed cost per tree)
    rows, width = x.shape
    drops = np.zeros(width)
    for batch in feature_batches(width, rows, width, MAX_BATCH_CELLS):
        shuffled = np.tile(x, (len(batch), 1))
        for k, j in enumerate(batch):
            shuffled[k * rows : (k + 1) * rows, j] = x[rng.permutation(rows), j]
        scores = model.predict_proba(shuffled)[:, 1].reshape(len(batch), rows)
        for k, j in enumerate(batch):
            u, _, _ = _u_statistic(scores[k], y)
            drops[j] = auc - _auc(u, n0, n1)
    return drops


def _normalised(drops: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    positive = np.clip(drops, 0.0, None)
    total = positive.sum()
    shares = positive / total if total > 0 else positive
    order = np.argsort(-shares, kind="stable")
    return {str(names[j]): float(shares[j]) for j in order}


# --------------------------------------------------------------------------- entry point


def multivariate_drift(
    reference_sample: pd.DataFrame,
    current: pd.DataFrame,
    *,
    seed: int = 0,
    categorical: Sequence[Any] | None = None,
    alpha: float = 0.05,
    min_auc: float = 0.55,
    max_rows: int = MAX_ROWS,
    importances: bool = True,
) -> MultivariateDrift:
    """Domain-classifier and PCA-reconstruction drift of ``current`` against a reference row
    sample (the columns of ``reference_sample`` are the features; ``categorical`` names the
    categorical ones, by default the non-numeric dtypes). Seeded: the same inputs and seed
    give the same result. Either part is ``skipped`` with its reason when it cannot be
    computed; the other still is."""
    ref, cur, is_cat, names = encode_rows(reference_sample, current, categorical)
    if not names:
        return MultivariateDrift.skip("no feature columns")
    classifier = classifier_drift(
        ref, cur, is_cat, names, seed=seed, alpha=alpha, min_auc=min_auc,
        max_rows=max_rows, importances=importances,
    )  # fmt: skip
    reconstruction = reconstruction_drift(ref, cur, is_cat, seed=seed)
    return MultivariateDrift(classifier, reconstruction)
