"""CBPE and DLE against known answers: a perfectly calibrated model, a Monte-Carlo of the
expected-accuracy formula, scikit-learn's metrics, and the named skips."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from retraining_assets.core.estimation import (
    PerformanceEstimator,
    expected_accuracy,
    expected_calibration_error,
    expected_f1,
    expected_roc_auc,
    fit_estimator,
)
from retraining_assets.core.evaluation import compute_metric


def calibrated_binary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities that are the truth: y ~ Bernoulli(p)."""
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 2, size=n)
    y = (rng.uniform(size=n) < p).astype(int)
    return np.column_stack([1 - p, p]), y


def test_cbpe_on_a_perfectly_calibrated_model_recovers_the_realized_metrics_within_the_interval():
    holdout, y = calibrated_binary(5000, seed=1)
    estimator = fit_estimator("binary", y, holdout)
    for seed in range(2, 12):  # ten unlabelled periods
        scores, truth = calibrated_binary(800, seed)
        estimates = estimator.estimate(scores)
        for metric in ("accuracy", "f1", "roc_auc"):
            realized = compute_metric(metric, truth, scores)
            e = estimates[metric]
            assert e.lower <= realized <= e.upper, (metric, seed, e, realized)
            assert e.method == "cbpe" and e.n == 800 and e.skipped is None


def test_expected_accuracy_matches_a_direct_monte_carlo_of_the_labels():
    rng = np.random.default_rng(3)
    p = rng.dirichlet([1, 1, 1], size=300)
    predicted = p.argmax(axis=1)
    draws = 4000  # labels drawn from p, accuracy of the fixed predictions averaged
    cumulative = p.cumsum(axis=1)
    u = rng.uniform(size=(draws, len(p), 1))
    labels = (u > cumulative[None, :, :]).sum(axis=2)
    monte_carlo = (labels == predicted[None, :]).mean()
    assert expected_accuracy(p, predicted) == pytest.approx(monte_carlo, abs=0.003)


def test_expected_f1_and_auc_equal_sklearn_when_the_probabilities_are_certain():
    # with 0/1 calibrated probabilities the expected confusion matrix is the realized one
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 500)
    raw = rng.uniform(size=500)
    calibrated = np.column_stack([1 - y, y]).astype(float)
    predicted = (raw > 0.5).astype(int)
    assert expected_f1(calibrated, predicted) == pytest.approx(f1_score(y, predicted))
    raw2 = np.column_stack([1 - raw, raw])
    assert expected_roc_auc(raw2, calibrated) == pytest.approx(roc_auc_score(y, raw))


def test_miscalibrated_probabilities_are_calibrated_on_the_holdout():
    # an overconfident model: it says p**0.3 where the truth is p
    rng = np.random.default_rng(5)
    p = rng.uniform(size=6000)
    y = (rng.uniform(size=6000) < p).astype(int)
    said = p**0.3
    raw = np.column_stack([1 - said, said])
    estimator = fit_estimator("binary", y[:4000], raw[:4000])
    assert estimator.calibrators[1] is not None  # isotonic lowered the out-of-fold ECE
    e = estimator.estimate(raw[4000:])["accuracy"]
    realized = compute_metric("accuracy", y[4000:], raw[4000:])
    uncalibrated = expected_accuracy(raw[4000:], raw[4000:].argmax(axis=1))
    assert abs(e.value - realized) < abs(uncalibrated - realized)
    assert e.lower <= realized <= e.upper
    assert expected_calibration_error(p, y) < expected_calibration_error(said, y)


def test_cbpe_survives_a_json_round_trip():
    holdout, y = calibrated_binary(2000, seed=6)
    estimator = fit_estimator("binary", y, holdout)
    again = PerformanceEstimator.from_dict(json.loads(json.dumps(estimator.to_dict())))
    scores, _ = calibrated_binary(300, seed=7)
    assert again.estimate(scores) == estimator.estimate(scores)


def test_dle_estimates_rmse_and_mae_of_a_synthetic_regression_within_the_interval():
    rng = np.random.default_rng(8)

    def period(n: int, shift: float) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        frame = pd.DataFrame({"a": rng.normal(shift, 1, n), "c": rng.choice(["x", "y"], n)})
        noise = 0.5 + np.abs(frame["a"]) + (frame["c"] == "y") * 1.0  # heteroscedastic
        pred = 2 * frame["a"].to_numpy()
        return frame, pred + rng.normal(size=n) * noise.to_numpy(), pred

    frame, y, pred = period(4000, 0.0)
    estimator = fit_estimator("regression", y, pred, frame, ("a",), ("c",))
    stored = PerformanceEstimator.from_dict(json.loads(json.dumps(estimator.to_dict())))
    # a covariate shift into the noisier region: the estimate must follow the realized error
    current, truth, current_pred = period(1500, 1.5)
    estimates = stored.estimate(current_pred, current)
    for metric in ("rmse", "mae"):
        realized = compute_metric(metric, truth, current_pred)
        assert estimates[metric].lower <= realized <= estimates[metric].upper, metric
        assert realized > estimator.holdout[metric] * 1.2  # the shift did make it worse


def test_a_single_class_calibration_set_and_a_model_without_probabilities_are_named_skips():
    scores, _ = calibrated_binary(100, seed=9)
    single = fit_estimator("binary", np.zeros(100, int), scores)
    assert "single class" in single.skipped
    assert all(
        e.value is None and "single class" in e.skipped for e in single.estimate(scores).values()
    )
    no_proba = fit_estimator("binary", np.r_[np.zeros(50, int), np.ones(50, int)], np.zeros(100))
    assert "no class probabilities" in no_proba.skipped
    tiny = fit_estimator("binary", np.array([0, 1, 0]), scores[:3])
    assert "fewer than" in tiny.skipped
    estimator = fit_estimator("binary", *reversed(calibrated_binary(200, 10)))
    assert estimator.estimate(np.zeros((0, 2)))["accuracy"].skipped == "the period holds no records"


def gaussian_period(
    rng: np.random.Generator, n: int, shift: float | None
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Records, labels, predictions and the noise scale: y = 2a + N(0, (0.5 + |a|)^2), with
    a ~ N(shift, 1), or uniform on [-4, 4] (a reference covering every period) when None."""
    a = rng.uniform(-4, 4, n) if shift is None else rng.normal(shift, 1, n)
    frame = pd.DataFrame({"a": a})
    scale = 0.5 + np.abs(frame["a"].to_numpy())
    pred = 2 * frame["a"].to_numpy()
    return frame, pred + rng.normal(size=n) * scale, pred, scale


def test_dle_follows_the_analytic_mae_and_rmse_of_heteroscedastic_noise_as_the_features_shift():
    # with Gaussian noise of scale s the known answers are E|e| = s * sqrt(2 / pi), E e^2 = s^2.
    # The reference covers where the periods go: a tree loss model (ours and NannyML's) does
    # not extrapolate, it answers the error of the reference's edge beyond it
    rng = np.random.default_rng(11)
    frame, y, pred, _ = gaussian_period(rng, 5000, None)
    estimator = fit_estimator("regression", y, pred, frame, ("a",))
    previous = {"mae": 0.0, "rmse": 0.0}
    for shift in (0.0, 1.0, 2.0):
        current, _, current_pred, scale = gaussian_period(rng, 1500, shift)
        expected = {
            "mae": float(scale.mean() * np.sqrt(2 / np.pi)),
            "rmse": float(np.sqrt((scale**2).mean())),
        }
        estimates = estimator.estimate(current_pred, current)
        for metric, answer in expected.items():
            e = estimates[metric]
            assert e.lower <= answer <= e.upper, (metric, shift, e, answer)
            assert e.value > previous[metric], (metric, shift)  # rises with the noise
            previous[metric] = e.value


def test_dle_reads_the_prediction_not_only_the_features():
    # the noise grows with the prediction, which no recorded feature reveals: only a loss
    # model given the prediction (as NannyML's DLE is) can see the period's larger errors
    rng = np.random.default_rng(12)

    def period(n: int, low: float) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        pred = rng.uniform(low, 4, n)
        frame = pd.DataFrame({"unrelated": rng.normal(size=n)})
        return frame, pred + rng.normal(size=n) * (0.1 + pred), pred

    frame, y, pred = period(4000, 0.0)
    estimator = fit_estimator("regression", y, pred, frame, ("unrelated",))
    current, truth, current_pred = period(1500, 3.0)
    e = estimator.estimate(current_pred, current)["mae"]
    realized = compute_metric("mae", truth, current_pred)
    assert realized > estimator.holdout["mae"] * 1.5
    assert e.lower <= realized <= e.upper, (e, realized)
    # larger errors spread wider: the band grows with the estimate (it held the realized
    # value only once it did)
    usual, _, usual_pred = period(1500, 0.0)
    like_holdout = estimator.estimate(usual_pred, usual)["mae"]
    assert e.upper - e.lower > 1.5 * (like_holdout.upper - like_holdout.lower)


def test_dle_names_a_missing_feature_column_and_a_prediction_count_that_does_not_match():
    rng = np.random.default_rng(13)
    frame, y, pred, _ = gaussian_period(rng, 500, 0.0)
    estimator = fit_estimator("regression", y, pred, frame, ("a",))
    with pytest.raises(ValueError, match=r"lack the feature columns \['a'\]"):
        estimator.estimate(pred, frame.rename(columns={"a": "b"}))
    with pytest.raises(ValueError, match="499 predictions for 500 records"):
        estimator.estimate(pred[:-1], frame)
    with pytest.raises(ValueError, match="needs the period's records"):
        estimator.estimate(pred)
