"""The compiled scorer scores exactly like the model it was compiled from, or is not used."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pandas as pd
import pytest

from retraining_assets.core.demo import SPEC
from retraining_assets.core.training import TrainedModel, split_by_time, train_ensemble, train_model
from retraining_assets.service.predictions import new_ids
from retraining_assets.service.scoring import CompiledScorer, FrameScorer, probe_columns, scorer_for
from retraining_assets_tests.service.conftest import Trained


def _columns(frame: pd.DataFrame, spec=SPEC) -> dict[str, np.ndarray]:
    columns = {name: frame[name].to_numpy(dtype=np.float64) for name in spec.numeric_features}
    for name in spec.categorical_features:
        columns[name] = frame[name].astype(object).where(frame[name].notna(), None).to_numpy()
    return columns


@pytest.mark.parametrize("family", ["forest", "boosted"])
def test_compiled_scores_equal_the_models_own(trained: Trained, family: str) -> None:
    model: TrainedModel = getattr(trained, family)
    scorer, why_not = scorer_for(model, SPEC)
    assert isinstance(scorer, CompiledScorer) and why_not is None
    frame = trained.frame.copy()
    frame.loc[::7, "income"] = np.nan  # missing values
    frame.loc[::5, "region"] = None
    frame.loc[::11, "channel"] = "carrier_pigeon"  # unseen in training
    assert np.array_equal(scorer.scores(_columns(frame)), model.scores(frame))
    probe = probe_columns(model, SPEC)
    assert np.array_equal(scorer.scores(probe), model.scores(pd.DataFrame(probe)))
    for n in (0, 1):
        assert np.array_equal(scorer.scores(_columns(frame.iloc[:n])), model.scores(frame.iloc[:n]))


def test_a_regression_forest_is_compiled_too(trained: Trained) -> None:
    spec = SPEC.__class__(
        time_column=SPEC.time_column,
        target="loan_amount",
        task="regression",
        numeric_features=tuple(f for f in SPEC.numeric_features if f != "loan_amount"),
        categorical_features=SPEC.categorical_features,
    )
    model = train_model("random_forest", split_by_time(trained.frame, spec), spec)
    scorer, why_not = scorer_for(model, spec)
    assert why_not is None
    assert np.array_equal(scorer.scores(_columns(trained.frame, spec)), model.scores(trained.frame))


def test_an_unknown_kind_of_model_is_scored_by_itself(trained: Trained) -> None:
    split = split_by_time(trained.frame, SPEC)
    ensemble = train_ensemble([trained.forest, trained.boosted], split, SPEC)
    scorer, why_not = scorer_for(ensemble, SPEC)
    assert isinstance(scorer, FrameScorer) and "ensemble" in why_not
    assert np.array_equal(scorer.scores(_columns(trained.frame)), ensemble.scores(trained.frame))


def test_prediction_ids_are_uuid7_increasing_within_the_process() -> None:
    before = time.time_ns() // 1_000_000
    batches = [new_ids(5000), new_ids(1), new_ids(3000)]
    after = time.time_ns() // 1_000_000
    ids = [i for batch in batches for i in batch]
    assert len(set(ids)) == len(ids) == 8001
    assert ids == sorted(ids)  # in the order they were handed out, batch after batch
    for i in ids[:100] + ids[-100:]:
        parsed = uuid.UUID(hex=i)
        assert (parsed.version, parsed.variant, parsed.hex) == (7, uuid.RFC_4122, i)
        assert before <= parsed.int >> 80 <= after + 1  # the Unix milliseconds lead
    assert new_ids(0) == []
