import numpy as np
import pandas as pd
import pytest

from retraining_assets.core.demo import SPEC, DemoStream
from retraining_assets.core.validation import CHECKS, ReferenceBounds, validate_period


@pytest.fixture
def bounds(small_stream: DemoStream) -> ReferenceBounds:
    return ReferenceBounds.learn(small_stream.generate(0), SPEC)


@pytest.fixture
def month(small_stream: DemoStream) -> pd.DataFrame:
    return small_stream.generate(1)


def _by_name(outcomes) -> dict:
    return {outcome.name: outcome for outcome in outcomes}


def test_a_clean_month_passes_every_check(month: pd.DataFrame, bounds: ReferenceBounds) -> None:
    outcomes = _by_name(validate_period(month, SPEC, bounds))
    assert list(outcomes) == [check.name for check in CHECKS]
    assert all(outcome.passed for outcome in outcomes.values())
    assert outcomes["schema"].expectations >= len(SPEC.columns)


def test_blocking_checks_are_schema_target_and_non_empty() -> None:
    assert {c.name for c in CHECKS if c.blocking} == {"schema", "target_valid", "non_empty"}


def test_missing_column_fails_the_schema_check_naming_it(month, bounds) -> None:
    outcome = _by_name(validate_period(month.drop(columns=["income"]), SPEC, bounds))["schema"]
    assert not outcome.passed and outcome.blocking
    assert {
        "expectation": "expect_column_to_exist",
        "column": "income",
        "detail": "column is missing",
        "examples": [],
    } in outcome.failures


def test_wrong_dtype_fails_the_schema_check(month, bounds) -> None:
    outcome = _by_name(validate_period(month.assign(age=month["age"].astype(str)), SPEC, bounds))[
        "schema"
    ]
    assert [f["column"] for f in outcome.failures] == ["age"]


def test_null_or_unknown_target_blocks(month, bounds) -> None:
    nulls = _by_name(validate_period(month.assign(defaulted=np.nan), SPEC, bounds))["target_valid"]
    assert not nulls.passed and nulls.failures[0]["column"] == "defaulted"
    unknown = _by_name(
        validate_period(month.assign(defaulted=month["defaulted"].replace(1, 2)), SPEC, bounds)
    )
    assert not unknown["target_valid"].passed
    assert unknown["target_valid"].failures[0]["examples"][0] == 2


def test_empty_month_fails_non_empty_with_a_clear_message(month, bounds) -> None:
    outcomes = _by_name(validate_period(month.iloc[:0], SPEC, bounds))
    assert not outcomes["non_empty"].passed
    assert "observed 0" in outcomes["non_empty"].summary
    assert outcomes["schema"].passed  # columns are there; nothing else to judge


def test_out_of_range_values_only_warn_and_show_examples(month, bounds) -> None:
    shifted = month.assign(income=month["income"] * 10)
    outcome = _by_name(validate_period(shifted, SPEC, bounds))["numeric_ranges"]
    assert not outcome.passed and not outcome.blocking
    failure = outcome.failures[0]
    assert failure["column"] == "income" and len(failure["examples"]) == 5
    assert "rows unexpected" in failure["detail"]


def test_unseen_categories_and_rising_nulls_warn(month, bounds) -> None:
    changed = month.assign(
        channel="carrier_pigeon",
        debt_ratio=month["debt_ratio"].where(month.index % 2 == 0),
    )
    outcomes = _by_name(validate_period(changed, SPEC, bounds))
    assert [f["column"] for f in outcomes["categorical_domains"].failures] == ["channel"]
    assert outcomes["categorical_domains"].failures[0]["examples"][0] == "carrier_pigeon"
    assert [f["column"] for f in outcomes["null_rates"].failures] == ["debt_ratio"]
    assert all(outcomes[name].passed for name in ("schema", "target_valid", "non_empty"))


def test_bounds_round_trip(bounds: ReferenceBounds) -> None:
    assert ReferenceBounds.from_dict(bounds.to_dict()) == bounds
