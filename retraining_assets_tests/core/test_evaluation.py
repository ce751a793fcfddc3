"""Metrics against scikit-learn, lift, paired bootstrap, McNemar and the holdout comparison."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.evaluation import (
    METRICS,
    compare_on_holdout,
    compute_metric,
    compute_metrics,
    default_primary_metric,
    mcnemar,
    metrics_for,
    paired_bootstrap,
    relative_lift,
)
from retraining_assets.core.training import TrainedModel

Y_BINARY = np.array([0, 0, 1, 1, 0, 1, 0, 1, 1, 0])
P_BINARY = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.7, 0.3, 0.05])
Y_MULTI = np.array([0, 1, 2, 2, 1, 0, 2, 1])
P_MULTI = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.2, 0.5, 0.3],
        [0.1, 0.3, 0.6],
        [0.3, 0.3, 0.4],
        [0.5, 0.4, 0.1],
        [0.6, 0.1, 0.3],
        [0.2, 0.2, 0.6],
        [0.1, 0.7, 0.2],
    ]
)
Y_REG = np.array([3.0, -0.5, 2.0, 7.0, 4.2])
P_REG = np.array([2.5, 0.0, 2.0, 8.0, 3.9])


def test_binary_metrics_match_scikit_learn() -> None:
    proba = np.column_stack([1 - P_BINARY, P_BINARY])
    labels = (P_BINARY > 0.5).astype(int)
    expected = {
        "roc_auc": skm.roc_auc_score(Y_BINARY, P_BINARY),
        "log_loss": skm.log_loss(Y_BINARY, P_BINARY),
        "accuracy": skm.accuracy_score(Y_BINARY, labels),
        "f1": skm.f1_score(Y_BINARY, labels),
        "brier": skm.brier_score_loss(Y_BINARY, P_BINARY),
    }
    assert compute_metrics("binary", Y_BINARY, proba) == pytest.approx(expected)
    # a 1-D float array is the positive-class probability
    assert compute_metric("roc_auc", Y_BINARY, P_BINARY) == pytest.approx(expected["roc_auc"])


def test_multiclass_metrics_match_scikit_learn() -> None:
    labels = P_MULTI.argmax(axis=1)
    expected = {
        "roc_auc": skm.roc_auc_score(Y_MULTI, P_MULTI, multi_class="ovr", average="macro"),
        "log_loss": skm.log_loss(Y_MULTI, P_MULTI),
        "accuracy": skm.accuracy_score(Y_MULTI, labels),
        "f1": skm.f1_score(Y_MULTI, labels, average="macro"),
        # ours is the mean of the per-class Brier scores; scikit-learn sums over classes
        "brier": skm.brier_score_loss(Y_MULTI, P_MULTI) / 3,
    }
    assert compute_metrics("multiclass", Y_MULTI, P_MULTI) == pytest.approx(expected)


def test_regression_metrics_match_scikit_learn() -> None:
    expected = {
        "rmse": skm.root_mean_squared_error(Y_REG, P_REG),
        "mae": skm.mean_absolute_error(Y_REG, P_REG),
        "r2": skm.r2_score(Y_REG, P_REG),
    }
    assert compute_metrics("regression", Y_REG, P_REG) == pytest.approx(expected)


def test_uncomputable_metrics_are_none_not_nan() -> None:
    one_class = np.zeros(5, dtype=int)
    assert compute_metric("roc_auc", one_class, np.full(5, 0.3)) is None
    assert compute_metric("accuracy", one_class, np.full(5, 0.3)) == 1.0
    assert compute_metric("r2", np.ones(4), np.array([1.0, 2.0, 0.0, 1.0])) is None
    assert compute_metric("rmse", np.zeros(0), np.zeros(0)) is None


def test_directions_and_task_metrics() -> None:
    assert metrics_for("binary") == ["roc_auc", "log_loss", "accuracy", "f1", "brier"]
    assert metrics_for("multiclass") == metrics_for("binary")
    assert metrics_for("regression") == ["rmse", "mae", "r2"]
    higher = {name for name, metric in METRICS.items() if metric.higher_is_better}
    assert higher == {"roc_auc", "accuracy", "f1", "r2"}
    assert default_primary_metric("binary") == "accuracy"
    assert default_primary_metric("multiclass") == "accuracy"
    assert default_primary_metric("regression") == "rmse"


@pytest.mark.parametrize(
    ("candidate", "champion", "higher", "expected"),
    [
        (0.84, 0.80, True, 0.05),  # accuracy up 5%
        (0.76, 0.80, True, -0.05),
        (0.9, 1.0, False, 0.1),  # rmse down 10% is a +10% lift
        (1.1, 1.0, False, -0.1),
        (0.0005, 0.0, True, 0.0005),  # zero baseline: absolute difference
        (0.2, 0.0, False, -0.2),
        (-0.25, -0.5, True, 0.5),  # negative R² baseline improving
        (-0.5, -0.25, True, -1.0),
        (0.8, 0.8, True, 0.0),  # tie
        (0.8, 0.8, False, 0.0),
    ],
)
def test_relative_lift(candidate: float, champion: float, higher: bool, expected: float) -> None:
    assert relative_lift(candidate, champion, higher) == pytest.approx(expected)


def _correct_labels(rng: np.random.Generator, y: np.ndarray, accuracy: float) -> np.ndarray:
    """Labels that are right with probability ``accuracy``, independently per row."""
    return np.where(rng.random(len(y)) < accuracy, y, 1 - y)


def test_bootstrap_ci_covers_a_known_effect_and_excludes_zero() -> None:
    rng = np.random.default_rng(42)
    y = rng.integers(0, 2, 4000)
    candidate, champion = _correct_labels(rng, y, 0.80), _correct_labels(rng, y, 0.74)
    result = paired_bootstrap(y, candidate, champion, "accuracy", n_resamples=1000, seed=1)
    observed = (candidate == y).mean() - (champion == y).mean()
    assert result.difference == pytest.approx(observed)
    assert result.ci_low < 0.06 < result.ci_high
    assert result.ci_low > 0
    assert (result.n_resamples, result.seed) == (1000, 1)


def test_bootstrap_ci_includes_zero_without_an_effect() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 3000)
    candidate, champion = _correct_labels(rng, y, 0.78), _correct_labels(rng, y, 0.78)
    result = paired_bootstrap(y, candidate, champion, "accuracy", seed=3)
    assert result.ci_low < 0 < result.ci_high


def test_bootstrap_signs_follow_the_good_direction() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(size=2000)
    better, worse = y + rng.normal(0, 0.5, 2000), y + rng.normal(0, 1.0, 2000)
    result = paired_bootstrap(y, better, worse, "rmse", n_resamples=300)
    assert result.difference > 0 and result.ci_low > 0  # lower rmse = candidate better
    labels = rng.integers(0, 2, 3000)
    sharp = np.clip(labels * 0.4 + rng.random(3000) * 0.6, 0, 1)
    blunt = np.clip(labels * 0.1 + rng.random(3000) * 0.9, 0, 1)
    auc = paired_bootstrap(labels, sharp, blunt, "roc_auc", n_resamples=300)
    assert auc.ci_low > 0
    reverse = paired_bootstrap(labels, blunt, sharp, "log_loss", n_resamples=300)
    assert reverse.ci_high < 0


def test_same_seed_same_interval() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 500)
    first, second = rng.dirichlet([1, 1, 1], 500), rng.dirichlet([1, 1, 1], 500)
    runs = [paired_bootstrap(y, first, second, "roc_auc", n_resamples=200, seed=9) for _ in "ab"]
    assert runs[0] == runs[1]
    other = paired_bootstrap(y, first, second, "roc_auc", n_resamples=200, seed=10)
    assert (other.ci_low, other.ci_high) != (runs[0].ci_low, runs[0].ci_high)


def _pairs(b: int, c: int, both_right: int = 20, both_wrong: int = 5):
    """Truth and two label vectors with exactly b candidate-only and c champion-only wins."""
    y = np.zeros(b + c + both_right + both_wrong, dtype=int)
    candidate = np.r_[np.zeros(b), np.ones(c), np.zeros(both_right), np.ones(both_wrong)]
    champion = np.r_[np.ones(b), np.zeros(c), np.zeros(both_right), np.ones(both_wrong)]
    return y, candidate.astype(int), champion.astype(int)


def test_mcnemar_exact_branch_matches_hand_computation() -> None:
    result = mcnemar(*_pairs(7, 2))
    # two-sided binomial: 2 * P(X <= 2 | n=9, p=1/2) = 2 * (1 + 9 + 36) / 512
    assert (result.b, result.c, result.method) == (7, 2, "exact")
    assert result.statistic == 2
    assert result.p_value == pytest.approx(92 / 512)


def test_mcnemar_chi_square_branch_matches_hand_computation() -> None:
    result = mcnemar(*_pairs(30, 12))
    statistic = (abs(30 - 12) - 1) ** 2 / (30 + 12)
    assert (result.b, result.c, result.method) == (30, 12, "chi2")
    assert result.statistic == pytest.approx(statistic)
    # chi-square with one degree of freedom: P(X > s) = erfc(sqrt(s / 2))
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(statistic / 2)))


def test_mcnemar_without_disagreement() -> None:
    y = np.array(["a", "b", "a"])
    result = mcnemar(y, y, y)
    assert (result.b, result.c, result.p_value) == (0, 0, 1.0)


# --- compare_on_holdout with stand-in models ---------------------------------------------------
SPEC = DatasetSpec(
    time_column="t",
    target="y",
    task="binary",
    numeric_features=("signal",),
    categorical_features=(),
    classes=("no", "yes"),
)


@dataclass
class _NoisyScorer:
    """Probability of "yes" = the true signal blurred by noise of a given size."""

    noise: float
    seed: int

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        logit = frame["signal"].to_numpy() + rng.normal(0, self.noise, len(frame))
        positive = 1 / (1 + np.exp(-logit))
        return np.column_stack([1 - positive, positive])


def _model(name: str, noise: float, seed: int, task: str = "binary") -> TrainedModel:
    return TrainedModel(name, task, {}, 0.0, SPEC.classes, ("signal",), _NoisyScorer(noise, seed))


@pytest.fixture(scope="module")
def holdout_template() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    signal = rng.normal(0, 2, 3000)
    truth = rng.random(3000) < 1 / (1 + np.exp(-signal))
    return pd.DataFrame({"t": np.arange(3000), "signal": signal, "y": np.where(truth, "yes", "no")})


@pytest.fixture
def holdout(holdout_template: pd.DataFrame) -> pd.DataFrame:
    """The holdout, a copy for each test (the template is built once per module)."""
    return holdout_template.copy()


def test_compare_picks_the_best_candidate_and_compares_with_the_champion(holdout) -> None:
    candidates = {"blurry": _model("blurry", 3.0, 1), "sharp": _model("sharp", 0.3, 2)}
    comparison = compare_on_holdout(
        candidates, holdout, SPEC, "roc_auc", champion=_model("champion", 1.5, 3), n_resamples=300
    )
    assert comparison.best_candidate == "sharp"
    assert comparison.candidate_value == comparison.scores["sharp"]["roc_auc"]
    assert comparison.candidate_value > comparison.champion_value
    assert comparison.lift == pytest.approx(
        comparison.candidate_value / comparison.champion_value - 1
    )
    assert comparison.bootstrap.ci_low > 0
    assert comparison.mcnemar is not None and comparison.mcnemar.b > comparison.mcnemar.c
    markdown = comparison.to_markdown()
    for name in ("blurry", "sharp (best)", "champion"):
        assert sum(line.startswith(f"| {name} |") for line in markdown.splitlines()) == 1
    assert "**roc_auc**" in markdown and "Lift over the champion" in markdown
    as_json = json.loads(json.dumps(comparison.to_dict(), allow_nan=False))
    assert as_json["best_candidate"] == "sharp"
    assert set(as_json["scores"]) == {"blurry", "sharp", "champion"}


def test_compare_without_champion_and_with_a_lower_is_better_metric(holdout) -> None:
    candidates = {"sharp": _model("sharp", 0.3, 2), "blurry": _model("blurry", 3.0, 1)}
    comparison = compare_on_holdout(candidates, holdout, SPEC, "log_loss")
    assert comparison.best_candidate == "sharp"
    assert comparison.champion_value is None and comparison.lift is None
    assert comparison.bootstrap is None and comparison.mcnemar is None
    assert "No champion yet" in comparison.to_markdown()
    default = compare_on_holdout(candidates, holdout, SPEC, None)
    assert default.primary_metric == "accuracy"


def test_compare_rejects_a_metric_of_another_task(holdout) -> None:
    with pytest.raises(ValueError, match="does not apply"):
        compare_on_holdout({"sharp": _model("sharp", 0.3, 2)}, holdout, SPEC, "rmse")


@dataclass
class _NoisyRegressor:
    noise: float
    seed: int

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        return frame["signal"].to_numpy() + rng.normal(0, self.noise, len(frame))


def test_compare_regression_by_default_rmse(holdout) -> None:
    spec = DatasetSpec("t", "y", "regression", ("signal",), ())
    frame = holdout.assign(y=holdout["signal"] + np.random.default_rng(1).normal(0, 0.2, 3000))

    def regressor(noise: float, seed: int) -> TrainedModel:
        return TrainedModel(
            "r", "regression", {}, 0.0, (), ("signal",), _NoisyRegressor(noise, seed)
        )

    comparison = compare_on_holdout(
        {"rough": regressor(1.0, 1), "fine": regressor(0.1, 2)},
        frame,
        spec,
        None,
        champion=regressor(0.5, 3),
        n_resamples=200,
    )
    assert comparison.primary_metric == "rmse" and not comparison.higher_is_better
    assert comparison.best_candidate == "fine"
    assert comparison.lift > 0.5 and comparison.bootstrap.ci_low > 0
    assert comparison.mcnemar is None
