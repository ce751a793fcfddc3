from pathlib import Path

import pandas as pd
import pytest

from retraining_assets.core.dataset import DatasetError, DatasetSpec, infer_task
from retraining_assets.core.demo import SPEC, DemoStream
from retraining_assets.core.splits import TrainingError, split_by_time


@pytest.fixture
def month(small_stream: DemoStream) -> pd.DataFrame:
    return small_stream.generate(0)


def test_infer_matches_the_demo_spec(month: pd.DataFrame) -> None:
    spec = DatasetSpec.infer(month, "event_time", "defaulted", entity_id="customer_id")
    assert spec.task == "binary"
    assert spec.classes == ("0", "1")
    assert set(spec.numeric_features) == set(SPEC.numeric_features)
    assert set(spec.categorical_features) == set(SPEC.categorical_features)


def test_explicit_features_and_drop_win(month: pd.DataFrame) -> None:
    spec = DatasetSpec.infer(
        month,
        "event_time",
        "defaulted",
        drop=["customer_id", "income"],
        categorical_features=["loan_term", "region"],
    )
    assert "income" not in spec.features and "customer_id" not in spec.features
    assert spec.categorical_features == ("loan_term", "region")
    assert "loan_term" not in spec.numeric_features


@pytest.mark.parametrize(
    ("values", "task"),
    [
        ([0, 1, 1, 0], "binary"),
        (["UP", "DOWN"], "binary"),
        ([0, 1, 2, 2], "multiclass"),
        ([0.5, 1.25, 3.75, 9.0], "regression"),
        (list(range(100)), "regression"),
    ],
)
def test_task_inference(values: list, task: str) -> None:
    assert infer_task(pd.Series(values)) == task


def test_a_fitting_frame_has_no_problems(month: pd.DataFrame) -> None:
    assert SPEC.problems(month) == []
    assert SPEC.check(month)["event_time"].dtype.kind == "M"


def test_every_problem_is_reported_with_its_column(month: pd.DataFrame) -> None:
    bad = month.drop(columns=["age"]).assign(
        income="lots",
        debt_ratio=None,
        defaulted=month["defaulted"].where(month.index > 3, 7),
        event_time=month["event_time"].astype(str).where(month.index > 1, "not a date"),
    )
    kinds = {(p.column, p.kind) for p in SPEC.problems(bad)}
    assert ("age", "missing_column") in kinds
    assert ("income", "wrong_dtype") in kinds
    assert ("debt_ratio", "all_null") in kinds
    assert ("defaulted", "unknown_class") in kinds
    assert ("event_time", "bad_timestamp") in kinds
    with pytest.raises(DatasetError, match="column 'age': required column is missing"):
        SPEC.check(bad, where="month 2024-01")


def test_target_all_null_is_one_clear_problem(month: pd.DataFrame) -> None:
    problems = SPEC.problems(month.assign(defaulted=None))
    assert [(p.column, p.kind) for p in problems] == [("defaulted", "target_null")]
    assert "every row" in problems[0].message


def test_spec_survives_json(month: pd.DataFrame) -> None:
    assert DatasetSpec.from_json(SPEC.to_json()) == SPEC


def test_elec2_gets_a_sensible_spec(elec2: Path) -> None:
    frame = pd.read_csv(elec2, nrows=2000)
    spec = DatasetSpec.infer(frame, "ts", "class")
    assert spec.task == "binary" and spec.classes == ("DOWN", "UP")
    assert spec.numeric_features == (
        "day",
        "period",
        "nswprice",
        "nswdemand",
        "vicprice",
        "vicdemand",
        "transfer",
    )
    assert spec.categorical_features == ()
    assert spec.problems(frame) == []


def test_whole_number_labels_read_as_float_match_integer_classes() -> None:
    from retraining_assets.core.dataset import label_strings

    frame = pd.DataFrame({"ts": ["2024-01-01"] * 4, "x": [1.0, 2.0, 3.0, 4.0],
                          "y": [0.0, 1.0, None, 1.0]})  # fmt: skip
    spec = DatasetSpec.infer(frame, "ts", "y")
    assert spec.task == "binary" and spec.classes == ("0", "1")
    assert [p.kind for p in spec.problems(frame.dropna())] == []
    assert list(label_strings(pd.Series([2.0, 0.0]))) == ["2", "0"]
    assert list(label_strings(pd.Series(["UP", "DOWN"]))) == ["UP", "DOWN"]


def test_an_empty_frame_has_no_spec_to_infer(month: pd.DataFrame) -> None:
    with pytest.raises(DatasetError, match="no rows"):
        DatasetSpec.infer(month.head(0), "event_time", "defaulted")


def test_a_single_target_class_is_a_problem_of_the_target(month: pd.DataFrame) -> None:
    one_class = month.assign(defaulted=1)
    spec = DatasetSpec.infer(one_class, "event_time", "defaulted", entity_id="customer_id")
    problems = spec.problems(one_class)
    assert [(p.column, p.kind) for p in problems] == [("defaulted", "single_class")]
    assert f"a single class '1' in {len(month)} labelled rows" in problems[0].message
    # a regression target may hold one value: learnable, if dull
    constant = month.assign(income=1000.0)
    regression = DatasetSpec.infer(constant, "event_time", "income", task="regression")
    assert "single_class" not in {p.kind for p in regression.problems(constant)}


def test_infinite_values_are_named_with_their_column(month: pd.DataFrame) -> None:
    bad = month.assign(
        income=month["income"].where(month.index > 2, float("inf")),
        age=month["age"].where(month.index != 5, -float("inf")),
    )
    assert {(p.column, p.kind, p.message) for p in SPEC.problems(bad)} == {
        ("income", "infinite", f"inf or -inf in 3 of {len(month):,} rows"),
        ("age", "infinite", f"inf or -inf in 1 of {len(month):,} rows"),
    }
    # a regression target is a number the models are fitted to: the same refusal
    regression = DatasetSpec.infer(month, "event_time", "income", task="regression")
    infinite = regression.infinite_values(month.assign(income=float("inf")))
    assert [p.column for p in infinite] == ["income"]


def test_training_refuses_infinite_values_naming_the_column(month: pd.DataFrame) -> None:
    # scikit-learn's own refusal ("Input X contains infinity") names no column
    bad = month.assign(income=month["income"].where(month.index != 7, float("inf")))
    with pytest.raises(TrainingError, match=r"training data: column 'income': inf or -inf in 1 "):
        split_by_time(bad, SPEC)
    assert len(split_by_time(month, SPEC).train) > 0
