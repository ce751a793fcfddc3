"""Trainers on binary (demo stream), multiclass and regression data, splits, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.demo import CONCEPT, SPEC, DemoStream
from retraining_assets.core.evaluation import evaluate
from retraining_assets.core.training import (
    FAMILIES,
    Split,
    TrainedModel,
    TrainingError,
    data_fingerprint,
    model_from_bytes,
    model_to_bytes,
    split_by_time,
    split_for_training,
    train_candidates,
    train_model,
)
from retraining_assets.settings import load_settings

STREAM = DemoStream(months=24, rows_per_month=400, end_month=pd.Timestamp("2026-10-01"))
START = pd.Timestamp("2026-01-01")


def _with_time(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    seconds = rng.uniform(0, 90 * 86400, len(frame))
    return frame.assign(event_time=START + pd.to_timedelta(seconds, unit="s"))


def _multiclass_frame() -> tuple[pd.DataFrame, DatasetSpec]:
    X, y = make_classification(
        n_samples=1200, n_features=6, n_informative=4, n_classes=3, random_state=3
    )
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    frame["colour"] = np.where(
        y == 2, "red", np.random.default_rng(3).choice(["blue", "green"], 1200)
    )
    frame["label"] = np.array(["alpha", "beta", "gamma"])[y]
    spec = DatasetSpec.infer(_with_time(frame, 3), "event_time", "label")
    return _with_time(frame, 3), spec


def _regression_frame() -> tuple[pd.DataFrame, DatasetSpec]:
    rng = np.random.default_rng(5)
    n = 1200
    frame = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(5)})
    frame["shop"] = rng.choice(["a", "b", "c"], n)
    frame.loc[rng.random(n) < 0.05, "x1"] = np.nan
    effect = frame["shop"].map({"a": 0.0, "b": 2.0, "c": -1.0})
    frame["sales"] = 3 * frame["x0"] + np.sin(frame["x2"]) * 2 + effect + rng.normal(0, 0.5, n) + 10
    frame = _with_time(frame, 5)
    return frame, DatasetSpec.infer(frame, "event_time", "sales", task="regression")


def _binary_frame() -> tuple[pd.DataFrame, DatasetSpec]:
    return pd.concat([STREAM.generate(o) for o in range(3)], ignore_index=True), SPEC


DATASETS = {
    "binary": _binary_frame,
    "multiclass": _multiclass_frame,
    "regression": _regression_frame,
}


@pytest.fixture(scope="module", params=list(DATASETS))
def trained(request: pytest.FixtureRequest) -> tuple[Split, DatasetSpec, dict[str, TrainedModel]]:
    frame, spec = DATASETS[request.param]()
    split = split_by_time(frame, spec)
    messages: list[str] = []
    models = train_candidates(split, spec, FAMILIES, seed=0, progress=messages.append)
    assert any("ensemble" in message for message in messages)
    return split, spec, models


def test_every_family_trains_reports_and_beats_a_trivial_baseline(trained) -> None:
    split, spec, models = trained
    assert list(models) == list(FAMILIES)
    target = split.holdout[spec.target]
    for family, model in models.items():
        assert model.family == family and model.task == spec.task
        assert model.training_seconds >= 0 and model.params
        predictions = model.predict(split.holdout)
        assert len(predictions) == len(split.holdout)
        if spec.task == "regression":
            assert predictions.dtype == np.float64
            model_rmse = np.sqrt(np.mean((target.to_numpy() - predictions) ** 2))
            baseline = np.sqrt(np.mean((target - split.train[spec.target].mean()) ** 2))
            assert model_rmse < 0.6 * baseline, family
        else:
            assert set(predictions) <= set(model.classes) == set(spec.classes)
            proba = model.predict_proba(split.holdout)
            assert proba.shape == (len(split.holdout), len(spec.classes))
            np.testing.assert_allclose(proba.sum(axis=1), 1.0)
            majority = split.train[spec.target].astype(str).mode()[0]
            baseline = (target.astype(str) == majority).mean()
            accuracy = (target.astype(str).to_numpy() == predictions).mean()
            assert accuracy > baseline + 0.03, family


def test_family_parameters_are_reported(trained) -> None:
    models = trained[2]
    assert models["random_forest"].params["n_estimators"] == 200
    assert models["xgboost"].params["best_iteration"] < 300
    assert 1 <= models["neural_net"].params["epochs_trained"] <= 50
    weights = models["ensemble"].params["weights"]
    assert set(weights) == {"random_forest", "xgboost", "neural_net"}
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-5)


def test_unseen_and_missing_categories_do_not_crash(trained) -> None:
    split, spec, models = trained
    odd = split.holdout.copy()
    column = spec.categorical_features[0]
    odd[column] = odd[column].astype(object)
    odd.loc[odd.index[::2], column] = "never_seen_before"
    odd.loc[odd.index[1::4], column] = None
    odd["an_extra_column"] = 1
    for model in models.values():
        scores = model.scores(odd)
        assert np.isfinite(scores).all()


def test_missing_feature_column_is_named() -> None:
    frame, spec = _binary_frame()
    model = train_model("xgboost", split_by_time(frame, spec), spec)
    with pytest.raises(TrainingError, match="income"):
        model.predict(frame.drop(columns=["income"]))


def test_serialisation_round_trip_gives_identical_predictions(trained) -> None:
    split, _, models = trained
    for model in models.values():
        restored = model_from_bytes(model_to_bytes(model))
        assert restored.family == model.family and restored.params == model.params
        np.testing.assert_array_equal(restored.scores(split.holdout), model.scores(split.holdout))


def test_corrupt_artifact_raises_a_training_error() -> None:
    with pytest.raises(TrainingError, match="cannot be loaded"):
        model_from_bytes(b"not a model")


def test_fixed_seed_gives_identical_predictions() -> None:
    frame, spec = _binary_frame()
    split = split_by_time(frame, spec)
    first = train_candidates(split, spec, seed=11)
    second = train_candidates(split, spec, seed=11)
    for family in FAMILIES:
        np.testing.assert_array_equal(
            first[family].scores(split.holdout), second[family].scores(split.holdout)
        )


def test_time_split_holds_out_the_most_recent_rows_without_overlap() -> None:
    frame, spec = _binary_frame()
    shuffled = frame.sample(frac=1.0, random_state=1)
    split = split_by_time(shuffled, spec, valid_share=0.15, holdout_share=0.2)
    assert len(split.train) + len(split.valid) + len(split.holdout) == len(frame)
    assert len(split.holdout) == round(0.2 * len(frame))
    time = spec.time_column
    assert split.train[time].max() <= split.valid[time].min()
    assert split.valid[time].max() <= split.holdout[time].min()
    assert split.holdout[time].max() == frame[time].max()
    ids = [set(part["customer_id"]) for part in (split.train, split.valid, split.holdout)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert split.describe(time)["holdout"]["rows"] == len(split.holdout)


@pytest.mark.parametrize(
    ("rows", "holdout", "valid"),
    [(20_000, 500, 500), (2_000, 400, 300), (500, 100, 75)],  # capped at 20% / 15%
)
def test_split_by_records_holds_out_the_newest_records(rows: int, holdout: int, valid: int) -> None:
    """The pipeline's split (RETRAIN_HOLDOUT_RECORDS, RETRAIN_VALIDATION_RECORDS): a long
    window trains on data up to its newest 1,000 records, not up to its newest 35%."""
    frame = DemoStream(rows_per_month=rows * 2, months=1).generate(0).head(rows)
    shuffled = frame.sample(frac=1.0, random_state=2)
    split = split_for_training(load_settings())(shuffled, SPEC)
    assert (len(split.holdout), len(split.valid)) == (holdout, valid)
    assert len(split.train) == len(frame) - holdout - valid
    time = SPEC.time_column
    ordered = frame.sort_values(time, kind="stable")
    assert split.holdout[time].tolist() == ordered[time].iloc[-holdout:].tolist()
    if valid < 500:  # capped by its share: the block before the holdout, as before
        assert split.train[time].max() <= split.valid[time].min() <= split.holdout[time].min()
        return
    # valid is drawn from everything before the holdout: the newest of it is trained on
    before = set(ordered["customer_id"].iloc[:-holdout])
    assert set(split.train["customer_id"]) | set(split.valid["customer_id"]) == before
    assert not set(split.train["customer_id"]) & set(split.valid["customer_id"])
    assert split.train[time].max() > split.valid[time].min()
    assert max(split.train[time].max(), split.valid[time].max()) <= split.holdout[time].min()
    again = split_for_training(load_settings())(shuffled, SPEC)
    assert again.valid["customer_id"].tolist() == split.valid["customer_id"].tolist()


def test_validation_is_drawn_in_proportion_to_the_recency_weights() -> None:
    """With a half-life the valid part leans to the newest records, as the fit does; without,
    it is uniform over the time before the holdout."""
    frame = DemoStream(rows_per_month=20_000, months=1).generate(0)
    time, start = SPEC.time_column, frame[SPEC.time_column].min()

    def valid_age_share(half_life: str) -> float:
        split = split_for_training(load_settings(training_half_life=half_life))(frame, SPEC)
        cut = start + (split.holdout[time].min() - start) / 2
        return float((split.valid[time] >= cut).mean())  # share in the newer half

    assert valid_age_share("3d") > 0.9
    assert 0.4 < valid_age_share("") < 0.6


def test_recent_records_weigh_more_with_a_half_life() -> None:
    frame = DemoStream(rows_per_month=3000, months=1).generate(0)
    split = split_for_training(load_settings(training_half_life="10d"))(frame, SPEC)
    weights, times = split.train_weight, split.train[SPEC.time_column]
    assert weights is not None and len(weights) == len(split.train)
    assert weights.mean() == pytest.approx(1.0)
    assert (np.diff(weights) >= 0).all()  # time order: never lighter than an older row
    age = (times.iloc[-1] - times.iloc[0]) / pd.Timedelta(days=10)
    assert weights[0] / weights[-1] == pytest.approx(0.5**age)
    assert (
        split_for_training(load_settings(training_half_life=""))(frame, SPEC).train_weight is None
    )


def test_split_by_share_when_records_are_zero() -> None:
    frame = DemoStream(rows_per_month=20_000, months=1).generate(0)
    settings = load_settings(holdout_records=0, validation_records=0)
    split = split_for_training(settings)(frame, SPEC)
    assert (len(split.holdout), len(split.valid)) == (
        round(0.2 * len(frame)),
        round(0.15 * len(frame)),
    )


def test_split_errors_name_the_problem() -> None:
    frame, spec = _binary_frame()
    with pytest.raises(TrainingError, match="holdout part would be empty"):
        split_by_time(frame.head(4), spec, valid_share=0.3, holdout_share=0.1)
    with pytest.raises(TrainingError, match="single class '0'"):
        split_by_time(frame.assign(defaulted=0), spec)
    with_nulls = frame.astype({"defaulted": "float64"})
    with_nulls.loc[5:7, "defaulted"] = np.nan
    with pytest.raises(TrainingError, match=r"target 'defaulted' is null in 3 "):
        split_by_time(with_nulls, spec)
    with pytest.raises(TrainingError, match="valid_share"):
        split_by_time(frame, spec, valid_share=0.5, holdout_share=0.5)


def test_family_errors_name_the_problem() -> None:
    frame, spec = _binary_frame()
    split = split_by_time(frame, spec)
    with pytest.raises(TrainingError, match="unknown model family 'svm'"):
        train_model("svm", split, spec)
    with pytest.raises(TrainingError, match="needs at least one trained member"):
        train_model("ensemble", split, spec)
    with pytest.raises(TrainingError, match="needs at least one of"):
        train_candidates(split, spec, ["ensemble"])


def test_data_fingerprint_ignores_row_order_and_sees_changes() -> None:
    frame, spec = _binary_frame()
    fingerprint = data_fingerprint(frame, spec)
    assert len(fingerprint) == 64
    assert data_fingerprint(frame.sample(frac=1.0, random_state=2), spec) == fingerprint
    changed = frame.copy()
    changed.loc[0, "income"] += 1
    assert data_fingerprint(changed, spec) != fingerprint


def test_evaluation_sees_the_concept_drift() -> None:
    """A model trained before the concept drift (offset 22) is clearly worse on offset 23 than
    one trained on offset 22 and the earlier part of offset 23."""
    stream = DemoStream(months=24, rows_per_month=1500, end_month=pd.Timestamp("2026-10-01"))
    drift = CONCEPT.first_offset
    before = pd.concat([stream.generate(o) for o in range(drift - 3, drift)], ignore_index=True)
    after = pd.concat([stream.generate(o) for o in (drift, drift + 1)], ignore_index=True)
    recent = split_by_time(after, SPEC, valid_share=0.15, holdout_share=0.25)
    assert recent.holdout[SPEC.time_column].min() >= stream.month_start(drift + 1)
    old = train_model("xgboost", split_by_time(before, SPEC), SPEC)
    new = train_model("xgboost", recent, SPEC)
    old_scores, new_scores = (evaluate(m, recent.holdout, SPEC) for m in (old, new))
    assert new_scores["roc_auc"] > old_scores["roc_auc"] + 0.1
    assert new_scores["accuracy"] > old_scores["accuracy"] + 0.1
    assert new_scores["log_loss"] < old_scores["log_loss"]
