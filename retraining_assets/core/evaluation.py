"""Metrics with a direction, paired bootstrap, McNemar, and the holdout comparison.

Conventions used throughout:

- classification truth is an array of class *positions* (``encode_labels``) and predictions
  are probability matrices (n, k) in the model's ``classes`` order; a 1-D float array is read
  as the probability of the positive (last) class of a binary task, a 1-D integer array as
  predicted class positions. Regression truth and predictions are 1-D floats;
- every metric is computed from per-row quantities and a (resamples, n) matrix of row
  *counts*, so a plain evaluation (counts all 1) and every bootstrap resample share one code
  path and cannot disagree;
- a metric that cannot be computed is ``None``, never NaN: AUC when the truth holds a single
  class (multiclass: averaged over the classes that have both positives and negatives), R²
  when the truth is constant, any metric on zero rows.

The promotion decision is not made here (``core/promotion.py`` reads ``lift`` and
``bootstrap.ci_low`` from a ``Comparison``); this module only measures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from retraining_assets.core.dataset import DatasetSpec, Task
from retraining_assets.core.registry.records import CHAMPION
from retraining_assets.core.training import TrainedModel, encode_labels

EPSILON = float(np.finfo(np.float64).eps)  # log loss clip, as scikit-learn
MAX_MATRIX_CELLS = 4_000_000  # bootstrap rows x resamples held in memory at once


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    task: str  # "classification" | "regression"


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", True, "classification"),
        Metric("log_loss", False, "classification"),
        Metric("accuracy", True, "classification"),
        Metric("f1", True, "classification"),
        Metric("brier", False, "classification"),
        Metric("rmse", False, "regression"),
        Metric("mae", False, "regression"),
        Metric("r2", True, "regression"),
    )
}


def _kind(task: Task | str) -> str:
    return "regression" if task == "regression" else "classification"


def metrics_for(task: Task | str) -> list[str]:
    return [name for name, metric in METRICS.items() if metric.task == _kind(task)]


def default_primary_metric(task: Task | str) -> str:
    return "rmse" if task == "regression" else "accuracy"


def primary_metric_for(task: Task | str, chosen: str | None = None) -> str:
    """The metric promotion compares on: ``chosen`` (``RETRAIN_PRIMARY_METRIC``) when set,
    else the task's default. The pipeline, the backtest and the comparison all ask here."""
    return chosen or default_primary_metric(task)


def get_metric(name: str) -> Metric:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose from {list(METRICS)}")
    return METRICS[name]


# --- per-row ingredients and weighted metrics ------------------------------------------------
def _as_proba(prediction: np.ndarray, n_classes: int) -> np.ndarray:
    prediction = np.asarray(prediction)
    if prediction.ndim == 2:
        return prediction.astype(np.float64)
    if np.issubdtype(prediction.dtype, np.integer):  # hard labels: one-hot "probabilities"
        return np.eye(n_classes)[prediction]
    positive = prediction.astype(np.float64)
    return np.column_stack([1.0 - positive, positive])


def _n_classes(y_true: np.ndarray, *predictions: np.ndarray) -> int:
    widths = [p.shape[1] for p in predictions if np.ndim(p) == 2]
    return max([2, int(y_true.max(initial=0)) + 1, *widths])


def _weighted_mean(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    return counts @ values / counts.sum(axis=1)


def _auc(score: np.ndarray, positive: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC (ties count 1/2, as the trapezoidal ROC area) for every row of
    ``counts``, sorting once: positives' count-weighted share of negatives ranked below."""
    order = np.argsort(score, kind="stable")
    sorted_score, is_pos, weights = score[order], positive[order], counts[:, order]
    starts = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1]])
    pos = np.add.reduceat(weights * is_pos, starts, axis=1)
    neg = np.add.reduceat(weights * ~is_pos, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    numerator = (pos * (below + 0.5 * neg)).sum(axis=1)
    denominator = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _f1(y: np.ndarray, labels: np.ndarray, counts: np.ndarray, n_classes: int) -> np.ndarray:
    """Binary: F1 of the positive (last) class. Multiclass: macro F1 over the classes present
    in the truth or the predictions of each resample (scikit-learn's default label set)."""
    classes = [n_classes - 1] if n_classes == 2 else range(n_classes)
    scores = []
    for k in classes:
        tp = counts @ ((labels == k) & (y == k))
        wrong = counts @ ((labels == k) != (y == k))  # false positives + false negatives
        denominator = 2 * tp + wrong
        with np.errstate(invalid="ignore", divide="ignore"):
            scores.append(np.where(denominator > 0, 2 * tp / denominator, np.nan))
    stacked = np.stack(scores)
    if n_classes == 2:
        return np.nan_to_num(stacked[0], nan=0.0)  # no positives at all: F1 0, as sklearn
    with np.errstate(invalid="ignore"):
        present = ~np.isnan(stacked)
        return np.where(present.any(axis=0), np.nansum(stacked, axis=0) / present.sum(0), np.nan)


def _classification(name: str, y: np.ndarray, proba: np.ndarray, counts: np.ndarray) -> np.ndarray:
    n_classes = proba.shape[1]
    if name == "accuracy":
        return _weighted_mean(counts, (proba.argmax(axis=1) == y).astype(np.float64))
    if name == "log_loss":
        chosen = np.clip(proba[np.arange(len(y)), y], EPSILON, 1.0)
        return _weighted_mean(counts, -np.log(chosen))
    if name == "brier":  # mean over classes of each class's Brier score (= binary Brier)
        onehot = np.eye(n_classes)[y]
        return _weighted_mean(counts, ((proba - onehot) ** 2).mean(axis=1))
    if name == "f1":
        return _f1(y, proba.argmax(axis=1), counts, n_classes)
    if name == "roc_auc":
        if n_classes == 2:
            return _auc(proba[:, 1], y == 1, counts)
        per_class = np.stack([_auc(proba[:, k], y == k, counts) for k in range(n_classes)])
        with np.errstate(invalid="ignore"):
            valid = ~np.isnan(per_class)
            total = np.nansum(per_class, axis=0)
            return np.where(valid.any(axis=0), total / valid.sum(axis=0), np.nan)
    raise ValueError(f"{name!r} is not a classification metric")


def _regression(name: str, y: np.ndarray, pred: np.ndarray, counts: np.ndarray) -> np.ndarray:
    error = y - pred
    if name == "rmse":
        return np.sqrt(_weighted_mean(counts, error**2))
    if name == "mae":
        return _weighted_mean(counts, np.abs(error))
    if name == "r2":
        total = counts.sum(axis=1)
        spread = counts @ y**2 - (counts @ y) ** 2 / total
        with np.errstate(invalid="ignore", divide="ignore"):
            # relative tolerance: a constant truth leaves rounding noise, not variance
            constant = spread <= 1e-12 * np.maximum(counts @ y**2, 1e-300)
            return np.where(constant, np.nan, 1.0 - (counts @ error**2) / spread)
    raise ValueError(f"{name!r} is not a regression metric")


def _metric_rows(
    name: str, y: np.ndarray, prediction: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    if get_metric(name).task == "regression":
        return _regression(name, y.astype(np.float64), np.asarray(prediction, float), counts)
    return _classification(name, y.astype(np.int64), prediction, counts)


def _finite_or_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def compute_metric(name: str, y_true: np.ndarray, prediction: np.ndarray) -> float | None:
    """One metric on one set of rows (see the module docstring for the array conventions)."""
    y_true = np.asarray(y_true)
    if len(y_true) == 0:
        return None
    if get_metric(name).task == "classification":
        prediction = _as_proba(prediction, _n_classes(y_true, prediction))
    ones = np.ones((1, len(y_true)))
    return _finite_or_none(_metric_rows(name, y_true, prediction, ones)[0])


def compute_metrics(
    task: Task | str, y_true: np.ndarray, prediction: np.ndarray
) -> dict[str, float | None]:
    """Every metric of ``task``: ``{name: value or None}``."""
    return {name: compute_metric(name, y_true, prediction) for name in metrics_for(task)}


def truth(frame: pd.DataFrame, spec: DatasetSpec, model: TrainedModel) -> np.ndarray:
    """The target of ``frame`` as the model's metrics expect it (class positions or floats)."""
    values = frame[spec.target]
    nulls = int(values.isna().sum())
    if nulls:
        raise ValueError(f"target '{spec.target}' is null in {nulls} evaluation rows")
    if model.task == "regression":
        return values.to_numpy(dtype=np.float64)
    return encode_labels(values, model.classes)


def evaluate(
    model: TrainedModel, frame: pd.DataFrame, spec: DatasetSpec
) -> dict[str, float | None]:
    """All metrics of the model's task on ``frame`` (None where not computable)."""
    return compute_metrics(model.task, truth(frame, spec, model), model.scores(frame))


# --- lift ----------------------------------------------------------------------------------
def relative_lift(
    candidate: float, champion: float, higher_is_better: bool, abs_floor: float = 1e-3
) -> float:
    """How much better the candidate is, as a share of the champion's value.

    ``(candidate - champion) / |champion|`` with the sign turned so that positive always means
    "candidate better" (so rmse 0.8 vs 1.0 is +0.2). Dividing by ``|champion|`` keeps the sign
    right for negative baselines (R² -0.5 -> -0.25 is +0.5). When ``|champion| < abs_floor`` a
    ratio would explode, so the plain difference in the good direction is returned instead.
    """
    difference = (candidate - champion) if higher_is_better else (champion - candidate)
    if abs(champion) < abs_floor:
        return float(difference)
    return float(difference / abs(champion))


# --- paired bootstrap ----------------------------------------------------------------------
@dataclass(frozen=True)
class BootstrapResult:
    """Candidate minus champion in the metric's good direction (positive = candidate better),
    with a percentile confidence interval. ``None`` when the metric cannot be computed;
    resamples where it cannot be computed (e.g. one class drawn, for AUC) are skipped."""

    difference: float | None
    ci_low: float | None
    ci_high: float | None
    n_resamples: int
    seed: int
    confidence: float = 0.95


def _count_chunks(n: int, n_resamples: int, seed: int):
    """Row-count matrices of bootstrap resamples, in memory-bounded chunks.

    Each chunk draws its index matrix at once and turns it into per-row counts, so metrics are
    matrix-vector products. The chunk size depends on ``n`` only, so a seed fixes the result.
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, MAX_MATRIX_CELLS // max(n, 1))
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        index = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        yield np.bincount(index.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def paired_bootstrap(
    y_true: np.ndarray,
    pred_candidate: np.ndarray,
    pred_champion: np.ndarray,
    metric: str,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> BootstrapResult:
    """Paired bootstrap of the metric difference: both models are scored on the same
    resampled rows, so their correlated errors cancel and the interval is narrow."""
    y_true = np.asarray(y_true)
    direction = 1.0 if get_metric(metric).higher_is_better else -1.0
    if get_metric(metric).task == "classification":
        k = _n_classes(y_true, pred_candidate, pred_champion)
        pred_candidate, pred_champion = _as_proba(pred_candidate, k), _as_proba(pred_champion, k)
    candidate_value = compute_metric(metric, y_true, pred_candidate)
    champion_value = compute_metric(metric, y_true, pred_champion)
    if candidate_value is None or champion_value is None:
        return BootstrapResult(None, None, None, n_resamples, seed, confidence)
    differences = np.concatenate(
        [
            direction
            * (
                _metric_rows(metric, y_true, pred_candidate, counts)
                - _metric_rows(metric, y_true, pred_champion, counts)
            )
            for counts in _count_chunks(len(y_true), n_resamples, seed)
        ]
    )
    differences = differences[np.isfinite(differences)]
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail]) if len(differences) else (None,) * 2
    return BootstrapResult(
        difference=direction * (candidate_value - champion_value),
        ci_low=_finite_or_none(low),
        ci_high=_finite_or_none(high),
        n_resamples=n_resamples,
        seed=seed,
        confidence=confidence,
    )


# --- McNemar -------------------------------------------------------------------------------
EXACT_BELOW = 25  # discordant pairs below which the exact binomial test is used


@dataclass(frozen=True)
class McNemarResult:
    """``b``: rows only the candidate gets right; ``c``: rows only the champion gets right."""

    b: int
    c: int
    statistic: float
    p_value: float
    method: str  # "exact" | "chi2"


def mcnemar(
    y_true: np.ndarray, labels_candidate: np.ndarray, labels_champion: np.ndarray
) -> McNemarResult:
    """McNemar's test of equal accuracy on paired predictions: exact two-sided binomial when
    b + c < 25 (statistic = min(b, c)), else chi-square with continuity correction."""
    y_true = np.asarray(y_true)
    right_candidate = np.asarray(labels_candidate) == y_true
    right_champion = np.asarray(labels_champion) == y_true
    b = int((right_candidate & ~right_champion).sum())
    c = int((~right_candidate & right_champion).sum())
    if b + c < EXACT_BELOW:
        p_value = stats.binomtest(min(b, c), b + c, 0.5).pvalue if b + c else 1.0
        return McNemarResult(b, c, float(min(b, c)), float(p_value), "exact")
    statistic = (abs(b - c) - 1) ** 2 / (b + c)
    return McNemarResult(b, c, float(statistic), float(stats.chi2.sf(statistic, 1)), "chi2")


# --- comparison on the holdout -------------------------------------------------------------
# the champion's row in a comparison bears the registry alias's name (CHAMPION)


@dataclass(frozen=True)
class Comparison:
    """Every model scored on one holdout; the best candidate against the champion."""

    primary_metric: str
    higher_is_better: bool
    n_holdout: int
    scores: dict[str, dict[str, float | None]]  # model name -> metric -> value
    best_candidate: str
    candidate_value: float | None
    champion_value: float | None  # None: no champion yet
    lift: float | None  # relative_lift of the best candidate over the champion
    bootstrap: BootstrapResult | None
    mcnemar: McNemarResult | None  # classification only

    @property
    def has_champion(self) -> bool:
        return CHAMPION in self.scores

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (floats or None, no NaN, no numpy types)."""
        return asdict(self)

    def to_markdown(self) -> str:
        """A table (one row per model) and the best candidate's comparison with the champion."""
        names = list(next(iter(self.scores.values())))
        header = ["model", *[f"**{n}**" if n == self.primary_metric else n for n in names]]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for model, values in self.scores.items():
            label = f"{model} (best)" if model == self.best_candidate else model
            lines.append("| " + " | ".join([label, *(_fmt(values[n]) for n in names)]) + " |")
        lines.append("")
        direction = "higher" if self.higher_is_better else "lower"
        lines.append(
            f"Primary metric **{self.primary_metric}** ({direction} is better) on "
            f"{self.n_holdout} holdout rows; best candidate: **{self.best_candidate}**."
        )
        if self.has_champion:
            lines.append(
                f"Lift over the champion: {_fmt(self.lift, percent=True)}"
                + (
                    f"; {self.bootstrap.confidence:.0%} bootstrap CI of the difference: "
                    f"[{_fmt(self.bootstrap.ci_low)}, {_fmt(self.bootstrap.ci_high)}]"
                    if self.bootstrap
                    else ""
                )
                + (
                    f"; McNemar b={self.mcnemar.b}, c={self.mcnemar.c}, "
                    f"p={self.mcnemar.p_value:.3g} ({self.mcnemar.method})"
                    if self.mcnemar
                    else ""
                )
                + "."
            )
        else:
            lines.append("No champion yet: nothing to compare against.")
        return "\n".join(lines)


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.2%}" if percent else f"{value:.4f}"


def _rank_key(value: float | None, higher_is_better: bool) -> float:
    if value is None:
        return math.inf  # models whose metric cannot be computed rank last
    return -value if higher_is_better else value


def compare_on_holdout(
    candidates: Mapping[str, TrainedModel],
    holdout: pd.DataFrame,
    spec: DatasetSpec,
    primary_metric: str | None = None,
    *,
    champion: TrainedModel | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Score the candidates (and the champion, if any) on the same holdout rows and compare the
    best candidate by ``primary_metric`` with the champion. Ties keep the candidates' order."""
    if not candidates:
        raise ValueError("compare_on_holdout needs at least one candidate")
    if CHAMPION in candidates:
        raise ValueError(f"{CHAMPION!r} is reserved for the champion; pass it as champion=")
    primary = primary_metric_for(spec.task, primary_metric)
    info = get_metric(primary)
    if info.task != _kind(spec.task):
        raise ValueError(f"metric {primary!r} does not apply to a {spec.task} task")
    models = dict(candidates) | ({CHAMPION: champion} if champion is not None else {})
    classes = {model.classes for model in models.values()}
    if len(classes) > 1:
        raise ValueError(f"models disagree on the classes: {sorted(classes)}")
    reference = next(iter(models.values()))
    y_true = truth(holdout, spec, reference)
    predictions = {name: model.scores(holdout) for name, model in models.items()}
    scores = {
        name: compute_metrics(spec.task, y_true, prediction)
        for name, prediction in predictions.items()
    }
    best = min(candidates, key=lambda name: _rank_key(scores[name][primary], info.higher_is_better))
    candidate_value = scores[best][primary]
    champion_value = scores[CHAMPION][primary] if champion is not None else None
    lift = bootstrap = test = None
    if champion is not None:
        if candidate_value is not None and champion_value is not None:
            lift = relative_lift(candidate_value, champion_value, info.higher_is_better)
        bootstrap = paired_bootstrap(
            y_true,
            predictions[best],
            predictions[CHAMPION],
            primary,
            n_resamples=n_resamples,
            seed=seed,
        )
        if spec.task != "regression":
            test = mcnemar(
                y_true, predictions[best].argmax(axis=1), predictions[CHAMPION].argmax(axis=1)
            )
    return Comparison(
        primary_metric=primary,
        higher_is_better=info.higher_is_better,
        n_holdout=len(holdout),
        scores=scores,
        best_candidate=best,
        candidate_value=candidate_value,
        champion_value=champion_value,
        lift=lift,
        bootstrap=bootstrap,
        mcnemar=test,
    )


# --- the trivial baseline a first model must beat -------------------------------------------
def trivial_baseline(
    train: pd.DataFrame, holdout: pd.DataFrame, spec: DatasetSpec, model: TrainedModel, metric: str
) -> float | None:
    """``metric`` on the holdout for a model that ignores the features: it predicts the
    training class shares (classification) or the training mean (regression)."""
    y_train, y = truth(train, spec, model), truth(holdout, spec, model)
    if model.task == "regression":
        prediction = np.full(len(y), y_train.mean())
    else:
        shares = np.bincount(y_train, minlength=len(model.classes)) / max(len(y_train), 1)
        prediction = np.tile(shares, (len(y), 1))
    return compute_metric(metric, y, prediction)
