"""Request models built from a DatasetSpec: any feature name, strict types, clear errors."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.service.schemas import build_schemas, error_body

SPEC = DatasetSpec(
    time_column="t",
    target="y",
    task="multiclass",
    numeric_features=("model_config", "weight (kg)"),  # a pydantic attribute, a space
    categorical_features=("colour",),
    classes=("1", "2", "blue"),
)


def _errors(model: type, body: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(json.dumps(body))
    return error_body(caught.value.errors(), ("body",))["message"]


def test_any_column_name_is_a_feature() -> None:
    schemas = build_schemas(SPEC)
    body = {"entity_id": "e", "features": {"model_config": 1, "weight (kg)": None, "colour": "red"}}
    request = schemas.predict.model_validate_json(json.dumps(body))
    assert schemas.row(request.features) == {
        "model_config": 1.0,
        "weight (kg)": None,
        "colour": "red",
    }
    missing = _errors(schemas.predict, {"entity_id": "e", "features": {"colour": "red"}})
    assert missing == "features.model_config: Field required; features.weight (kg): Field required"


def test_columnar_bodies_are_validated_in_one_pass() -> None:
    schemas = build_schemas(SPEC)
    body = {
        "entity_ids": ["a", "b"],
        "features": {"model_config": [1, 2.5], "weight (kg)": [None, 3], "colour": ["x", None]},
    }
    ids, columns = schemas.parse_batch(json.dumps(body).encode())
    assert ids == ["a", "b"] and columns["weight (kg)"] == [None, 3.0]
    short = body | {"features": body["features"] | {"colour": ["x"]}}
    with pytest.raises(ValidationError) as caught:
        schemas.parse_batch(json.dumps(short).encode())
    message = error_body(caught.value.errors(), ("body",))["message"]
    assert message == "features.colour: has 1 values but entity_ids has 2"


def test_feedback_outcomes_are_canonical_class_labels() -> None:
    feedback = build_schemas(SPEC).feedback
    for given, canonical in ((1, "1"), (2.0, "2"), ("blue", "blue"), ("2", "2")):
        parsed = feedback.model_validate({"entity_id": "e", "outcome": given})
        assert parsed.outcome == canonical
    assert _errors(feedback, {"entity_id": "e", "outcome": 3}) == (
        "outcome: '3' is not one of the classes ['1', '2', 'blue']"
    )
    assert "outcome: must be a class label" in _errors(
        feedback, {"entity_id": "e", "outcome": True}
    )


def test_regression_feedback_takes_a_number() -> None:
    spec = DatasetSpec("t", "y", "regression", ("x",), ())
    feedback = build_schemas(spec).feedback
    assert feedback.model_validate({"prediction_id": "p", "outcome": 3}).outcome == 3.0
    assert _errors(feedback, {"prediction_id": "p", "outcome": "3"}) == (
        "outcome: Input should be a valid number"
    )
