"""Replay labelled records through a running prediction service, as live traffic would arrive.

Each chunk of records is one ``POST /predict/batch`` (the records' entity ids and features)
followed by one ``POST /feedback/batch`` (each prediction's true outcome, from the target
column). ``retrain demo --serve`` and ``retrain replay`` use it, so that a rollout has outcomes
to be judged on.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pandas as pd

from retraining_assets.core.dataset import DatasetSpec, label_strings


class ServiceError(RuntimeError):
    """The service refused a request: its status code and the body's explanation."""

    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        try:
            body: Any = response.json()
            detail = body.get("message") or body.get("detail") or body
        except ValueError:
            detail = response.text
        super().__init__(
            f"{response.request.method} {response.request.url.path}: "
            f"HTTP {response.status_code}: {detail}"
        )


@dataclass
class Replayed:
    """What a replay served: predictions per variant, and per model version the predictions
    and the correct ones (classification)."""

    variants: Counter[str] = field(default_factory=Counter)
    served: Counter[int] = field(default_factory=Counter)
    correct: Counter[int] = field(default_factory=Counter)

    @property
    def rows(self) -> int:
        return sum(self.variants.values())

    def add(self, other: Replayed) -> None:
        self.variants.update(other.variants)
        self.served.update(other.served)
        self.correct.update(other.correct)


class TrafficReplay:
    """A client that plays ``spec``'s records to the service at ``client.base_url``."""

    def __init__(self, client: httpx.Client, spec: DatasetSpec) -> None:
        if spec.entity_id is None:
            raise ValueError("replaying traffic needs the spec's entity_id column")
        self.client = client
        self.spec = spec

    def replay(self, frame: pd.DataFrame, chunk_rows: int = 1000) -> Iterator[Replayed]:
        """Serve ``frame`` chunk by chunk and report each chunk's true outcomes; yields after
        each chunk, so the caller can judge the rollout as the traffic goes on."""
        for start in range(0, len(frame), chunk_rows):
            yield self.serve(frame.iloc[start : start + chunk_rows])

    def serve(self, frame: pd.DataFrame) -> Replayed:
        """One batch of predictions, then the outcomes of all of them. The records are
        checked first, so a bad one stops the replay before anything is sent."""
        outcomes = _outcomes(frame[self.spec.target], self.spec.task)
        body = {
            "entity_ids": frame[self.spec.entity_id].astype(str).tolist(),
            "features": {
                name: _json_column(frame[name], name in self.spec.numeric_features)
                for name in self.spec.features
            },
        }
        predicted = self._post("/predict/batch", body)
        self._post(
            "/feedback/batch",
            {"prediction_ids": predicted["prediction_ids"], "outcomes": outcomes},
        )
        versions = predicted["model_versions"]
        replayed = Replayed(Counter(predicted["variants"]), Counter(versions))
        if self.spec.task != "regression":
            hits = np.asarray(predicted["predictions"], dtype=object) == np.asarray(outcomes)
            replayed.correct.update(np.asarray(versions)[hits].tolist())
        return replayed

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(path, json=body)
        if response.is_error:
            raise ServiceError(response)
        return response.json()


def _json_column(values: pd.Series, numeric: bool) -> list[Any]:
    """A feature column as JSON values: numbers as floats, categories as strings, null for a
    missing value (what the service's request model expects)."""
    if numeric:
        numbers = values.astype(float)
        if np.isinf(numbers).any():
            raise ValueError(f"column '{values.name}' has infinite values: JSON cannot carry them")
        return [None if math.isnan(v) else v for v in numbers.tolist()]
    return [None if pd.isna(v) else str(v) for v in values.tolist()]


def _outcomes(target: pd.Series, task: str) -> list[Any]:
    if target.isna().any():
        raise ValueError(f"target column '{target.name}' has missing values: no outcome to report")
    if task == "regression":
        return target.astype(float).tolist()
    return label_strings(target).tolist()
