"""Permutation importance of a trained model, against scikit-learn's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance as sklearn_permutation_importance

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.evaluation import compute_metric, truth
from retraining_assets.core.importance import permutation_importance
from retraining_assets.core.permutation_batches import feature_batches
from retraining_assets.core.training import split_for_training, train_model
from retraining_assets.settings import load_settings


@pytest.fixture(scope="module")
def trained() -> tuple:
    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame({
        "ts": pd.date_range("2026-01-01", periods=n, freq="h"),
        "strong": rng.normal(0, 1, n),
        "weak": rng.normal(0, 1, n),
        "ignored": rng.normal(0, 1, n),
    })  # fmt: skip
    logit = 2.5 * frame["strong"] + 0.6 * frame["weak"]
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    spec = DatasetSpec.infer(frame, "ts", "y")
    split = split_for_training(load_settings())(frame, spec)
    return train_model("xgboost", split, spec, seed=0), split.holdout, spec


def test_matches_sklearn_permutation_importance(trained: tuple) -> None:
    model, holdout, spec = trained
    ours = permutation_importance(model, holdout, spec, "accuracy", repeats=20, seed=1)
    y = truth(holdout, spec, model)

    class Fitted:  # sklearn wants an object with fit; the trained model is already fitted
        def fit(self, *_args: object) -> Fitted:
            return self

    def score(_estimator, X, _y):  # sklearn permutes the frame, the real model scores it
        return compute_metric("accuracy", y, model.scores(X))

    theirs = sklearn_permutation_importance(
        Fitted(), holdout, y, scoring=score, n_repeats=20, random_state=1
    )
    names = list(holdout.columns)
    for feature in spec.features:
        expected = theirs.importances_mean[names.index(feature)]
        assert ours[feature] == pytest.approx(expected, abs=0.015)
    assert ours["strong"] > ours["weak"] > abs(ours["ignored"])
    assert abs(ours["ignored"]) < 0.01
    # seeded: the same call gives the same numbers
    assert ours == permutation_importance(model, holdout, spec, "accuracy", repeats=20, seed=1)


def test_lower_is_better_metrics_are_reversed(trained: tuple) -> None:
    model, holdout, spec = trained
    log_loss = permutation_importance(model, holdout, spec, "log_loss", seed=0)
    assert log_loss["strong"] > 0  # shuffling a useful feature worsens (raises) the loss


def test_too_few_rows_names_the_problem(trained: tuple) -> None:
    model, holdout, spec = trained
    with pytest.raises(ValueError, match="needs 30 rows, got 10"):
        permutation_importance(model, holdout.iloc[:10], spec, "accuracy")


def test_batching_features_into_one_scores_call_changes_no_number(trained: tuple) -> None:
    model, holdout, spec = trained
    together = permutation_importance(model, holdout, spec, "accuracy", seed=3)
    one_per_call = permutation_importance(
        model, holdout, spec, "accuracy", seed=3, max_batch_cells=1
    )
    assert one_per_call == together


class CountingModel:
    """The trained model, recording the shape of every frame it is asked to score."""

    def __init__(self, model) -> None:
        self.model, self.shapes = model, []

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        self.shapes.append(frame.shape)
        return self.model.scores(frame)


def test_a_wide_table_is_scored_in_batches_within_the_cell_budget(trained: tuple) -> None:
    # 300 features: a cap on rows alone would stack all 300 permuted copies in one call
    model, holdout, _ = trained
    noise = pd.DataFrame(0.0, index=holdout.index, columns=[f"noise_{i}" for i in range(300)])
    wide = pd.concat([holdout, noise], axis=1)
    wide_spec = DatasetSpec.infer(wide, "ts", "y")
    counting = CountingModel(model)
    budget = 100 * 5 * wide.shape[1] * 4  # four features' permuted copies of 100 rows
    importances = permutation_importance(
        counting, wide.iloc[:100], wide_spec, "accuracy", max_batch_cells=budget
    )
    permuted = counting.shapes[1:]  # the first call scores the unpermuted rows
    assert len(importances) == len(wide_spec.features) == 303
    assert len(permuted) == -(-303 // 4)
    assert all(rows * columns <= budget for rows, columns in permuted)
    assert sum(rows for rows, _ in permuted) == 303 * 5 * 100
    assert all(importances[f"noise_{i}"] == 0.0 for i in range(300))  # not the model's inputs


@pytest.mark.parametrize(
    ("features", "rows", "columns", "cells", "sizes"),
    [
        (10, 100, 10, 3_000, [3, 3, 3, 1]),  # three features' copies fit
        (5, 100, 10, 10, [1, 1, 1, 1, 1]),  # not even one fits: one a call
        (4, 100, 10, 1_000_000, [4]),  # all fit
        (0, 100, 10, 1_000, []),
    ],
)
def test_feature_batches_cover_every_feature_once_within_the_budget(
    features: int, rows: int, columns: int, cells: int, sizes: list[int]
) -> None:
    batches = feature_batches(features, rows, columns, cells)
    assert [len(batch) for batch in batches] == sizes
    assert [i for batch in batches for i in batch] == list(range(features))
