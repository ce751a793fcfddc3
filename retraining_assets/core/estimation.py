"""Performance estimated before the labels arrive: CBPE for classification, DLE for regression.

CBPE (confidence-based performance estimation, NannyML's method): the champion's probabilities,
calibrated on its holdout, are read as the chance each prediction is right, so a period's
expected confusion matrix, and from it expected accuracy / F1 / ROC AUC, need no labels. It is
right exactly as long as the calibration holds: a covariate shift that moves rows to regions
where the model is less sure lowers the estimate; a *concept* drift (P(y|x) changes while the
probabilities do not) is invisible to it by construction.

DLE (direct loss estimation): a gradient-boosted model, fitted on the holdout, predicts each
row's absolute and squared error from its features and the prediction; their means estimate
MAE and RMSE.

An estimate's interval is ±3 standard errors (NannyML's sampling band): the realized metric's
spread over random chunks of the holdout, scaled to the period's row count as 1/sqrt(n).
Everything fitted is stored as JSON (the loss model as a base64 skops file inside it, with the
types it may hold listed explicitly); never pickle.
"""

from __future__ import annotations

import base64
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.isotonic import IsotonicRegression

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.evaluation import compute_metric, truth
from retraining_assets.core.trained_model import TrainedModel

__all__ = [
    "CLASSIFICATION_ESTIMATES",
    "REGRESSION_ESTIMATES",
    "Estimate",
    "PerformanceEstimator",
    "expected_accuracy",
    "expected_calibration_error",
    "expected_f1",
    "expected_roc_auc",
    "fit_estimator",
    "fit_model_estimator",
]

CLASSIFICATION_ESTIMATES = ("accuracy", "f1", "roc_auc")
REGRESSION_ESTIMATES = ("mae", "rmse")
MIN_ROWS = 20  # fewer holdout rows than this give no trustworthy calibration or loss model
CHUNKS = 10  # holdout chunks the sampling spread is measured over
SIGMAS = 3.0
ECE_BINS = 10
SEED = 0
# what a fitted HistGradientBoostingRegressor holds beyond skops' default trusted types
_DLE_TRUSTED = (
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.Interval",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "numpy.dtype",
)


@dataclass(frozen=True)
class Estimate:
    """One estimated metric of one period, or why it was not computed (``skipped``)."""

    metric: str
    value: float | None
    lower: float | None = None
    upper: float | None = None
    n: int = 0
    method: str = ""  # "cbpe" | "dle"
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def skip(cls, metric: str, why: str, method: str = "") -> Estimate:
        return cls(metric, None, method=method, skipped=why)


# --- CBPE formulas (calibrated probabilities -> expected metrics) ---------------------------
def expected_accuracy(calibrated: np.ndarray, predicted: np.ndarray) -> float:
    """The expected share of right predictions: the mean calibrated probability of the
    predicted class (the expected confusion matrix's trace over n)."""
    return float(calibrated[np.arange(len(predicted)), predicted].mean())


def expected_f1(calibrated: np.ndarray, predicted: np.ndarray) -> float:
    """F1 from the expected confusion matrix: of the positive (last) class when binary, the
    macro mean over classes otherwise (as ``core.evaluation``)."""
    k = calibrated.shape[1]
    scores = []
    for c in [k - 1] if k == 2 else range(k):
        p, chosen = calibrated[:, c], predicted == c
        tp, fp, fn = p[chosen].sum(), (1 - p[chosen]).sum(), p[~chosen].sum()
        denominator = 2 * tp + fp + fn
        scores.append(2 * tp / denominator if denominator > 0 else 0.0)
    return float(np.mean(scores))


def _expected_auc(score: np.ndarray, p: np.ndarray) -> float | None:
    """The area under the expected ROC curve: thresholds at every distinct ``score``, expected
    true positives the calibrated ``p`` summed above the threshold, false positives 1 - p."""
    positives, negatives = p.sum(), (1 - p).sum()
    if positives <= 0 or negatives <= 0:
        return None
    order = np.argsort(-score, kind="stable")
    s, p = score[order], p[order]
    ends = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # ties share one threshold
    tpr = np.r_[0.0, np.cumsum(p)[ends] / positives]
    fpr = np.r_[0.0, np.cumsum(1 - p)[ends] / negatives]
    return float(np.trapezoid(tpr, fpr))


def expected_roc_auc(raw: np.ndarray, calibrated: np.ndarray) -> float | None:
    """Expected ROC AUC: binary on the positive class, else the macro one-vs-rest mean."""
    k = raw.shape[1]
    classes = [k - 1] if k == 2 else range(k)
    values = [_expected_auc(raw[:, c], calibrated[:, c]) for c in classes]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |observed rate - mean probability| over equal-width bins, weighted by bin size."""
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(index):
        inside = index == b
        total += inside.sum() * abs(y[inside].mean() - p[inside].mean())
    return float(total / len(p))


# --- calibration --------------------------------------------------------------------------
def _isotonic(p: np.ndarray, y: np.ndarray) -> IsotonicRegression:
    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)


def _out_of_fold_isotonic(p: np.ndarray, y: np.ndarray, folds: int = 3) -> np.ndarray:
    fold = np.random.default_rng(SEED).integers(0, folds, len(p))
    out = np.empty_like(p)
    for f in range(folds):
        held = fold == f
        out[held] = _isotonic(p[~held], y[~held]).predict(p[held]) if held.any() else 0
    return out


def _calibrator(p: np.ndarray, y: np.ndarray) -> dict[str, list[float]] | None:
    """Isotonic calibration (its step points) when it lowers the out-of-fold expected
    calibration error, else None (the probabilities are used as they are)."""
    if expected_calibration_error(_out_of_fold_isotonic(p, y), y) >= (
        expected_calibration_error(p, y)
    ):
        return None
    fitted = _isotonic(p, y)
    return {"x": fitted.X_thresholds_.tolist(), "y": fitted.y_thresholds_.tolist()}


def _calibrate(raw: np.ndarray, calibrators: list[dict[str, list[float]] | None]) -> np.ndarray:
    out = np.column_stack(
        [
            raw[:, c] if cal is None else np.interp(raw[:, c], cal["x"], cal["y"])
            for c, cal in enumerate(calibrators)
        ]
    )
    if out.shape[1] > 2:  # one-vs-rest calibrations need not sum to one
        sums = out.sum(axis=1, keepdims=True)
        out = np.divide(out, sums, out=np.full_like(out, 1 / out.shape[1]), where=sums > 0)
    elif out.shape[1] == 2:
        out[:, 0] = 1 - out[:, 1]
    return out


# --- DLE features ---------------------------------------------------------------------------
def _loss_features(
    frame: pd.DataFrame, numeric: list[str], categories: dict[str, list[str]], pred: np.ndarray
) -> np.ndarray:
    """The loss models' inputs, NannyML's DLE's too: every feature and the prediction."""
    missing = [c for c in (*numeric, *categories) if c not in frame.columns]
    if missing:
        raise ValueError(f"direct loss estimation: the records lack the feature columns {missing}")
    if len(pred) != len(frame):
        raise ValueError(
            f"direct loss estimation: {len(pred)} predictions for {len(frame)} records"
        )
    columns = [pd.to_numeric(frame[c], errors="coerce").to_numpy(np.float64) for c in numeric]
    for column, known in categories.items():  # unseen categories become missing values
        codes = pd.Categorical(frame[column].astype("string"), categories=known).codes
        columns.append(np.where(codes < 0, np.nan, codes).astype(np.float64))
    return np.column_stack([*columns, np.asarray(pred, np.float64)])


def _skops_text(model: HistGradientBoostingRegressor) -> str:
    import skops.io as sio  # on first use: skops takes seconds to import

    return base64.b64encode(sio.dumps(model)).decode()


def _skops_model(text: str) -> HistGradientBoostingRegressor:
    import skops.io as sio

    data = base64.b64decode(text)
    untrusted = set(sio.get_untrusted_types(data=data)) - set(_DLE_TRUSTED)
    if untrusted:
        raise ValueError(f"the stored loss model holds types it may not: {sorted(untrusted)}")
    return sio.loads(data, trusted=list(_DLE_TRUSTED))


# --- the estimator --------------------------------------------------------------------------
@dataclass(frozen=True)
class PerformanceEstimator:
    """What one model version needs to estimate its performance on unlabelled records,
    fitted on its holdout. ``skipped`` says why nothing can be estimated (the estimator then
    answers every metric with that reason)."""

    method: str  # "cbpe" | "dle" | "none"
    task: str
    unit_std: dict[str, float]  # per metric: holdout chunk std x sqrt(chunk rows)
    holdout: dict[str, float | None]  # the realized metrics on the holdout
    calibrators: list[dict[str, list[float]] | None] | None = None  # cbpe, per class
    numeric: tuple[str, ...] = ()  # dle
    categories: dict[str, list[str]] | None = None  # dle
    loss_models: dict[str, str] | None = None  # dle: "abs" / "squared" -> base64 skops
    skipped: str | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        return REGRESSION_ESTIMATES if self.task == "regression" else CLASSIFICATION_ESTIMATES

    def estimate(
        self, scores: np.ndarray, frame: pd.DataFrame | None = None
    ) -> dict[str, Estimate]:
        """Every estimable metric on a period: ``scores`` are the model's raw scores on its
        records (probabilities, or regression predictions); DLE also needs the ``frame``."""
        method = self.method
        if self.skipped:
            return {m: Estimate.skip(m, self.skipped, method) for m in self.metrics}
        n = len(scores)
        if n == 0:
            return {
                m: Estimate.skip(m, "the period holds no records", method) for m in self.metrics
            }
        values = self._cbpe(scores) if method == "cbpe" else self._dle(scores, frame)
        out = {}
        for metric, value in values.items():
            if value is None:
                out[metric] = Estimate.skip(metric, "undefined on these records", method)
                continue
            half = SIGMAS * self._unit_std(metric, value) / math.sqrt(n)
            out[metric] = Estimate(metric, value, value - half, value + half, n, method)
        return out

    def _unit_std(self, metric: str, value: float) -> float:
        """The holdout's per-row spread of the metric; for DLE scaled by the estimated loss
        over the holdout's: errors twice as large spread twice as wide (noise of one shape,
        another scale), so a period estimated noisier than the holdout gets a wider band, never
        a narrower one. (NannyML keeps the reference's band, too narrow on exactly the periods
        whose errors grew.)"""
        unit = self.unit_std.get(metric, 0.0)
        reference = self.holdout.get(metric)
        if self.method != "dle" or not reference or reference <= 0:
            return unit
        return unit * max(value / reference, 1.0)

    def _cbpe(self, raw: np.ndarray) -> dict[str, float | None]:
        calibrated = _calibrate(np.asarray(raw, np.float64), self.calibrators or [])
        predicted = raw.argmax(axis=1)
        return {
            "accuracy": expected_accuracy(calibrated, predicted),
            "f1": expected_f1(calibrated, predicted),
            "roc_auc": expected_roc_auc(raw, calibrated),
        }

    def _dle(self, pred: np.ndarray, frame: pd.DataFrame | None) -> dict[str, float | None]:
        if frame is None:
            raise ValueError("direct loss estimation needs the period's records, not only scores")
        X = _loss_features(frame, list(self.numeric), self.categories or {}, pred)
        models = self.loss_models or {}
        absolute = np.clip(_skops_model(models["abs"]).predict(X), 0, None)
        squared = np.clip(_skops_model(models["squared"]).predict(X), 0, None)
        return {"mae": float(absolute.mean()), "rmse": float(math.sqrt(squared.mean()))}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["numeric"] = list(self.numeric)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PerformanceEstimator:
        return cls(**{**data, "numeric": tuple(data.get("numeric", ()))})


def _unit_std(metric: str, y: np.ndarray, scores: np.ndarray, chunks: int = CHUNKS) -> float:
    """The realized metric's spread over random holdout chunks, times sqrt(chunk rows): a
    period of n rows then has standard error unit_std / sqrt(n)."""
    order = np.random.default_rng(SEED).permutation(len(y))
    parts = [part for part in np.array_split(order, chunks) if len(part)]
    values = [compute_metric(metric, y[part], scores[part]) for part in parts]
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return 0.0
    return float(np.std(values, ddof=1) * math.sqrt(len(y) / len(parts)))


def fit_estimator(
    task: str,
    y: np.ndarray,
    scores: np.ndarray,
    frame: pd.DataFrame | None = None,
    numeric: tuple[str, ...] = (),
    categorical: tuple[str, ...] = (),
) -> PerformanceEstimator:
    """Fit CBPE (classification: ``y`` class positions, ``scores`` probabilities (n, k)) or
    DLE (regression: ``y`` floats, ``scores`` predictions, ``frame`` the holdout's records and
    ``numeric`` / ``categorical`` its features) on a model's holdout."""
    regression = task == "regression"
    method = "dle" if regression else "cbpe"
    metrics = REGRESSION_ESTIMATES if regression else CLASSIFICATION_ESTIMATES

    def skip(why: str) -> PerformanceEstimator:
        return PerformanceEstimator("none", task, {}, {}, skipped=why)

    y, scores = np.asarray(y), np.asarray(scores)
    if len(y) < MIN_ROWS:
        return skip(f"the holdout holds {len(y)} rows, fewer than {MIN_ROWS}")
    if not regression and (scores.ndim != 2 or scores.shape[1] < 2):
        return skip("the model gives no class probabilities")
    if not regression and len(np.unique(y)) < 2:
        return skip(f"the calibration set (holdout) holds a single class ({int(y[0])})")
    unit_std = {m: _unit_std(m, y, scores) for m in metrics}
    holdout = {m: compute_metric(m, y, scores) for m in metrics}
    if not regression:
        k = scores.shape[1]
        calibrators = [_calibrator(scores[:, c], (y == c).astype(float)) for c in range(k)]
        return PerformanceEstimator(method, task, unit_std, holdout, calibrators=calibrators)
    if frame is None:
        raise ValueError("direct loss estimation needs the holdout's records")
    categories = {c: sorted(frame[c].dropna().astype(str).unique()) for c in categorical}
    X = _loss_features(frame, list(numeric), categories, scores)
    error = y.astype(np.float64) - scores.astype(np.float64)
    models = {}
    for name, target in (("abs", np.abs(error)), ("squared", error**2)):
        booster = HistGradientBoostingRegressor(max_iter=100, random_state=SEED)
        models[name] = _skops_text(booster.fit(X, target))
    return PerformanceEstimator(
        method, task, unit_std, holdout,
        numeric=tuple(numeric), categories=categories, loss_models=models,
    )  # fmt: skip


def fit_model_estimator(
    model: TrainedModel, holdout: pd.DataFrame, spec: DatasetSpec
) -> PerformanceEstimator:
    """The estimator of a trained model, fitted on its holdout (the rows it never saw)."""
    if holdout.empty:
        return PerformanceEstimator("none", model.task, {}, {}, skipped="the holdout is empty")
    return fit_estimator(
        model.task,
        truth(holdout, spec, model),
        model.scores(holdout),
        holdout,
        tuple(spec.numeric_features),
        tuple(spec.categorical_features),
    )


def estimate_period(
    model: TrainedModel,
    estimator: dict[str, Any] | None,
    frame: pd.DataFrame,
    spec: DatasetSpec,
    metric: str,
    labelled: pd.Series | None = None,
) -> dict[str, Any]:
    """A period's estimated metrics (the primary one first) and, once every record's label
    has arrived (``labelled``, from ``core.labels``; None: all have), the realized metric next
    to them. ``estimator`` is the version's stored ``PerformanceEstimator.to_dict()``."""
    if estimator is None:
        fitted = PerformanceEstimator(
            "none", model.task, {}, {}, skipped="the version was registered without an estimator"
        )
    else:
        fitted = PerformanceEstimator.from_dict(estimator)
    estimates = fitted.estimate(model.scores(frame), frame)
    primary = estimates.get(metric) or Estimate.skip(
        metric, f"{metric} is not estimated without labels (estimable: {list(fitted.metrics)})"
    )
    complete = labelled is None or bool(labelled.all())
    realized = None
    if complete and not frame.empty and frame[spec.target].notna().all():
        realized = compute_metric(metric, truth(frame, spec, model), model.scores(frame))
    return {
        "metric": metric,
        "estimate": primary.to_dict(),
        "estimates": {name: e.to_dict() for name, e in estimates.items()},
        "realized": realized,
        "labelled_rows": int(len(frame) if labelled is None else labelled.sum()),
        "rows": len(frame),
    }
