"""Request models of the prediction service, built from the pipeline's DatasetSpec.

Every feature is required (``null`` stands for a missing value), numeric features must be JSON
numbers and categorical ones strings, unknown fields are refused: a client that misspells a
feature hears so at once instead of getting a prediction made with an imputed value. Fields
carry safe internal names (``f0``, ``f1``, ...) with the feature names as aliases, so any column
name works, even one that clashes with a pydantic attribute.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from retraining_assets.core.dataset import DatasetSpec, label_strings

MAX_ID_LENGTH = 255  # the predictions table's entity_id column
MAX_BATCH_ROWS = 100_000  # one request's rows; bigger jobs belong in a batch scoring run

Number = Annotated[float | None, Strict(), Field(allow_inf_nan=False)]
Text = Annotated[str | None, Strict()]
# Ids are stored and looked up in the database, and PostgreSQL cannot hold a NUL character
# (psycopg2 refuses it with a plain ValueError): refused up front, in pydantic-core's regex.
NO_NUL = "^[^\\x00]*$"
NUL_MESSAGE = "must not contain NUL characters (\\u0000)"


def _id(max_length: int) -> Any:
    return Annotated[
        str, Strict(), StringConstraints(min_length=1, max_length=max_length, pattern=NO_NUL)
    ]


EntityId = _id(MAX_ID_LENGTH)
PredictionId = _id(32)
FORBID = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Schemas:
    """The pydantic models of one pipeline's requests and how to read features out of them."""

    spec: DatasetSpec
    features: type[BaseModel]  # one row: {"age": 41, "region": "north", ...}
    predict: type[BaseModel]  # {"entity_id": ..., "features": {...}}
    batch: type[BaseModel]  # {"entity_ids": [...], "features": {"age": [...], ...}}
    feedback: type[BaseModel]  # {"prediction_id" | "entity_id": ..., "outcome": ...}
    feedback_batch: type[BaseModel]  # {"prediction_ids": [...], "outcomes": [...]}
    fields: tuple[tuple[str, str], ...]  # (internal field name, feature name)

    def row(self, features: BaseModel) -> dict[str, Any]:
        """One row's features by feature name."""
        return {name: getattr(features, field) for field, name in self.fields}

    def columns(self, features: BaseModel) -> dict[str, list[Any]]:
        """A columnar body's features by feature name (the validated lists, not copies)."""
        return {name: getattr(features, field) for field, name in self.fields}

    def parse_batch(self, body: bytes) -> tuple[list[str], dict[str, list[Any]]]:
        """Validate a columnar body straight from its JSON bytes (one pass in pydantic-core):
        the entity ids and the feature columns, every column as long as ``entity_ids``."""
        batch = self.batch.model_validate_json(body)
        columns = self.columns(batch.features)
        n = len(batch.entity_ids)
        wrong = [(name, len(values)) for name, values in columns.items() if len(values) != n]
        if wrong:
            raise ValidationError.from_exception_data(
                self.batch.__name__, [_length_error(name, length, n) for name, length in wrong]
            )
        return batch.entity_ids, columns


def _length_error(name: str, length: int, expected: int) -> InitErrorDetails:
    message = "has {length} values but entity_ids has {expected}"
    return InitErrorDetails(
        type=PydanticCustomError(
            "length_mismatch", message, {"length": length, "expected": expected}
        ),
        loc=("features", name),
        input=length,
    )


def build_schemas(spec: DatasetSpec) -> Schemas:
    """The request models of ``spec``'s pipeline."""
    kinds = [(name, Number) for name in spec.numeric_features]
    kinds += [(name, Text) for name in spec.categorical_features]
    fields = tuple((f"f{i}", name) for i, (name, _) in enumerate(kinds))
    one = {f"f{i}": (kind, Field(alias=name)) for i, (name, kind) in enumerate(kinds)}
    many = {
        f"f{i}": (list[kind], Field(alias=name, max_length=MAX_BATCH_ROWS))  # type: ignore[valid-type]
        for i, (name, kind) in enumerate(kinds)
    }
    features = create_model("Features", __config__=FORBID, **one)  # type: ignore[call-overload]
    columns = create_model("FeatureColumns", __config__=FORBID, **many)  # type: ignore[call-overload]
    predict = create_model(
        "PredictRequest", __config__=FORBID, entity_id=(EntityId, ...), features=(features, ...)
    )
    batch = create_model(
        "PredictBatchRequest",
        __config__=FORBID,
        entity_ids=(list[EntityId], Field(max_length=MAX_BATCH_ROWS)),
        features=(columns, ...),
    )
    outcome = _outcome_type(spec)
    return Schemas(
        spec,
        features,
        predict,
        batch,
        _feedback_model(outcome),
        _feedback_batch_model(outcome),
        fields,
    )


def _outcome_type(spec: DatasetSpec) -> Any:
    """An observed outcome: a finite number (regression) or one of the classes."""
    if spec.task == "regression":
        return Annotated[float, Strict(), Field(allow_inf_nan=False)]
    classes = tuple(spec.classes)

    def known_class(value: Any) -> str:
        return canonical_label(value, classes)

    # what the validator accepts, stated in the OpenAPI document: a class as its string, or
    # a number whose label is a class (1 and 1.0 for class "1")
    numbers = []
    for label in classes:
        try:
            number = float(label)
        except ValueError:
            continue
        if math.isfinite(number) and canonical_label(number, classes) == label:
            numbers.append(int(number) if number.is_integer() else number)
    accepted: list[dict[str, Any]] = [{"type": "string", "enum": list(classes)}]
    if numbers:
        accepted.append({"type": "number", "enum": numbers})
    schema = {"anyOf": accepted, "description": f"one of the classes {list(classes)}"}
    return Annotated[Any, AfterValidator(known_class), WithJsonSchema(schema)]


def _feedback_model(outcome: Any) -> type[BaseModel]:
    def one_id(model: Any) -> Any:
        if (model.prediction_id is None) == (model.entity_id is None):
            raise ValueError("give exactly one of prediction_id and entity_id")
        return model

    def exactly_one(schema: dict[str, Any]) -> None:
        """The document says what ``one_id`` checks: one id, and no null for the other."""
        schema["oneOf"] = [{"required": ["prediction_id"]}, {"required": ["entity_id"]}]
        for name in ("prediction_id", "entity_id"):
            schema["properties"][name].pop("default", None)

    return create_model(
        "Feedback",
        __config__=ConfigDict(extra="forbid", json_schema_extra=exactly_one),
        __validators__={"one_id": model_validator(mode="after")(one_id)},
        prediction_id=(PredictionId, None),
        entity_id=(EntityId, None),
        outcome=(outcome, ...),
    )


def _feedback_batch_model(outcome: Any) -> type[BaseModel]:
    def same_length(model: Any) -> Any:
        ids, outcomes = len(model.prediction_ids), len(model.outcomes)
        if ids != outcomes:
            raise ValueError(f"outcomes has {outcomes} values but prediction_ids has {ids}")
        return model

    return create_model(
        "FeedbackBatch",
        __config__=FORBID,
        __validators__={"same_length": model_validator(mode="after")(same_length)},
        prediction_ids=(list[PredictionId], Field(min_length=1, max_length=MAX_BATCH_ROWS)),
        outcomes=(list[outcome], Field(min_length=1, max_length=MAX_BATCH_ROWS)),  # type: ignore[valid-type]
    )


def canonical_label(value: Any, classes: Sequence[str]) -> str:
    """``value`` as the canonical string of one of ``classes`` (1 and 1.0 are class "1")."""
    if isinstance(value, str) and value in classes:  # the common case, without pandas
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"must be a class label (a string or a number), one of {list(classes)}")
    text = str(label_strings(pd.Series([value])).iloc[0])
    if text not in classes:
        raise ValueError(f"{text!r} is not one of the classes {list(classes)}")
    return text


def error_body(errors: Iterable[Mapping[str, Any]], prefix: tuple[str, ...] = ()) -> dict:
    """A 422 body: each error with its location (``["body", "features", "age"]``), message and
    type, and one ``message`` line naming every field. Inputs are not echoed back (a batch
    body's would be megabytes)."""
    detail, parts = [], []
    for error in errors:
        loc = [*prefix, *error.get("loc", ())]
        msg = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "string_pattern_mismatch" and _ctx(error).get("pattern") == NO_NUL:
            msg = NUL_MESSAGE
        fields = [str(part) for part in loc if part != "body"]
        if error["type"] == "json_invalid":  # FastAPI puts the character position in loc
            reason = _ctx(error).get("error")
            msg = f"{msg}: {reason}" if reason and str(reason) not in msg else msg
            msg = f"{msg} (at character {fields[0]})" if fields else msg
            fields = []
        detail.append({"loc": loc, "msg": msg, "type": error["type"]})
        parts.append(f"{'.'.join(fields) or 'body'}: {msg}")
    return {"detail": detail, "message": "; ".join(parts)}


def _ctx(error: Mapping[str, Any]) -> Mapping[str, Any]:
    return error.get("ctx") or {}
