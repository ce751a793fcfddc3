"""The rows of the prediction log, and their form in the spool: one JSON line per append."""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass, fields
from datetime import datetime
from typing import Any

from pydantic_core import to_json

from retraining_assets.core import schema as tables


@dataclass(frozen=True)
class Prediction:
    """One served prediction. ``value``: the positive-class probability (binary), the top
    probability (multiclass) or the predicted value (regression)."""

    id: str
    pipeline: str
    entity_id: str
    variant: str
    model_version: int
    rollout_id: int | None
    label: str | None
    value: float | None
    created_at: datetime  # naive UTC
    rollout_step: int | None = None  # the step whose weights routed this entity


@dataclass(frozen=True)
class Outcome:
    """The observed outcome of one prediction: a class label, or a value (regression)."""

    prediction_id: str
    pipeline: str
    label: str | None
    value: float | None
    received_at: datetime  # naive UTC


Record = Prediction | Outcome
TABLES = {Prediction: tables.predictions, Outcome: tables.prediction_outcomes}
_KINDS = {"predictions": Prediction, "outcomes": Outcome}
_NAMES = {kind: name for name, kind in _KINDS.items()}
_STAMPS = {Prediction: "created_at", Outcome: "received_at"}
_FIELDS = {kind: [f.name for f in fields(kind)] for kind in _KINDS.values()}


def _row(record: Record) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


def encode(records: list[Record]) -> bytes:
    """One spool line per kind present: ``{"kind": "predictions", "rows": [[...], ...]}``,
    each row its fields in declaration order (pydantic-core's encoder: ~1 µs per row)."""
    lines = []
    for kind in (Prediction, Outcome):
        rows = [astuple(record) for record in records if type(record) is kind]
        if rows:
            lines.append(to_json({"kind": _NAMES[kind], "rows": rows}) + b"\n")
    return b"".join(lines)


def decode(line: str) -> list[Record]:
    """The records of one spool line (``ValueError`` when it is not one: a torn write).
    Also reads the one-record lines older versions spooled at close."""
    values = json.loads(line)
    if "rows" not in values:  # {"kind": "Prediction", "id": ..., ...}
        kind = Prediction if values.pop("kind") == "Prediction" else Outcome
        values[_STAMPS[kind]] = datetime.fromisoformat(values[_STAMPS[kind]])
        return [kind(**values)]
    kind = _KINDS[values["kind"]]
    names, stamp = _FIELDS[kind], _FIELDS[kind].index(_STAMPS[kind])
    records = []
    for row in values["rows"]:
        row[stamp] = datetime.fromisoformat(row[stamp])
        records.append(kind(**dict(zip(names, row, strict=True))))
    return records


def set_aside_line(record: Record, reason: str) -> bytes:
    """A refused row as one self-describing JSON line, with the database's reason."""
    values = _row(record)
    stamp = _STAMPS[type(record)]
    values[stamp] = values[stamp].isoformat()
    return to_json({"kind": type(record).__name__, **values, "reason": reason}) + b"\n"
