"""From validated rows to logged predictions: route each entity, score each variant's rows in
one call, label, log every prediction, and remember recent ones for feedback.

Everything here runs on the scoring thread (see ``batching``), one batch at a time.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.prediction_log import Prediction, PredictionLog
from retraining_assets.core.registry import CHALLENGER, CHAMPION, utc_now
from retraining_assets.service.models import ServedModels, Snapshot

RECENT_PREDICTIONS = 100_000  # ids kept in memory for feedback without a database read


@dataclass(frozen=True)
class Rows:
    """Validated rows, columnar: entity ids and one list per feature (None: missing)."""

    entity_ids: list[str]
    columns: dict[str, list[Any]]

    @classmethod
    def of(cls, items: Sequence[tuple[str, dict[str, Any]]], features: Sequence[str]) -> Rows:
        """Single-row requests ``(entity_id, {feature: value})`` as one columnar batch."""
        return cls(
            entity_ids=[entity for entity, _ in items],
            columns={name: [row[name] for _, row in items] for name in features},
        )


@dataclass(frozen=True)
class Predicted:
    """A batch's predictions, columnar, in the order of its rows."""

    ids: list[str]
    entity_ids: list[str]
    variants: list[str]
    versions: list[int]
    predictions: list[Any]  # class labels, or numbers (regression)
    probabilities: dict[str, list[float]] | None  # class -> probabilities (classification)
    rollout_id: int | None
    logged: int  # the prediction log's sequence number of the last row: answer once durable

    def one(self, i: int) -> dict[str, Any]:
        """The response of row ``i`` of a single-row request."""
        probabilities = (
            None
            if self.probabilities is None
            else {label: values[i] for label, values in self.probabilities.items()}
        )
        return {
            "prediction_id": self.ids[i],
            "entity_id": self.entity_ids[i],
            "prediction": self.predictions[i],
            "probabilities": probabilities,
            "variant": self.variants[i],
            "model_version": self.versions[i],
            "rollout_id": self.rollout_id,
        }

    def columns(self) -> dict[str, Any]:
        """The columnar response of a batch request."""
        return {
            "prediction_ids": self.ids,
            "entity_ids": self.entity_ids,
            "predictions": self.predictions,
            "probabilities": self.probabilities,
            "variants": self.variants,
            "model_versions": self.versions,
            "rollout_id": self.rollout_id,
        }


class RecentPredictions:
    """Recent prediction ids with their entities and recorded outcomes, and each entity's
    latest id: between ``capacity / 2`` and ``capacity`` of the newest. Two generations of
    dicts: when the young one is full it becomes the old one and the old one is dropped whole,
    so remembering a 10k-row batch costs a few dict updates, not 10k evictions. An outcome
    lives in its prediction's generation, so "is there an outcome already" is exact for every
    prediction remembered (the others are looked up in the log)."""

    def __init__(self, capacity: int = RECENT_PREDICTIONS) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._young = _Generation()
        self._old = _Generation()

    def remember(self, ids: Sequence[str], entity_ids: Sequence[str]) -> None:
        with self._lock:
            young = self._young
            young.entity_of.update(zip(ids, entity_ids, strict=True))
            young.latest.update(zip(entity_ids, ids, strict=True))
            self._age()

    def adopt(self, prediction_id: str, entity_id: str, outcome: Any) -> None:
        """A prediction found in the log (an earlier run, or forgotten), with its recorded
        outcome or None; it does not become its entity's latest."""
        with self._lock:
            if self._holder(prediction_id) is None:
                self._young.entity_of[prediction_id] = entity_id
                if outcome is not None:
                    self._young.outcome[prediction_id] = outcome
                self._age()

    def entity_of(self, prediction_id: str) -> str | None:
        with self._lock:
            holder = self._holder(prediction_id)
            return None if holder is None else holder.entity_of[prediction_id]

    def entities_of(self, prediction_ids: Sequence[str]) -> list[str | None]:
        with self._lock:
            young, old = self._young.entity_of, self._old.entity_of
            return [young.get(i) or old.get(i) for i in prediction_ids]

    def latest(self, entity_id: str) -> str | None:
        with self._lock:
            return self._young.latest.get(entity_id) or self._old.latest.get(entity_id)

    def outcomes_of(self, prediction_ids: Sequence[str]) -> list[Any]:
        """The outcome recorded for each remembered prediction (None: none yet)."""
        with self._lock:
            young, old = self._young.outcome, self._old.outcome
            return [young.get(i, old.get(i)) for i in prediction_ids]

    def record(self, prediction_ids: Sequence[str], outcomes: Sequence[Any]) -> None:
        """Remember the outcomes of remembered predictions."""
        with self._lock:
            for prediction_id, outcome in zip(prediction_ids, outcomes, strict=True):
                holder = self._holder(prediction_id)
                if holder is not None:
                    holder.outcome[prediction_id] = outcome

    def _holder(self, prediction_id: str) -> _Generation | None:
        for generation in (self._young, self._old):
            if prediction_id in generation.entity_of:
                return generation
        return None

    def _age(self) -> None:
        if len(self._young.entity_of) >= self.capacity // 2:
            self._old, self._young = self._young, _Generation()


@dataclass
class _Generation:
    entity_of: dict[str, str] = field(default_factory=dict)  # prediction id -> entity
    latest: dict[str, str] = field(default_factory=dict)  # entity -> its latest prediction id
    outcome: dict[str, Any] = field(default_factory=dict)  # prediction id -> outcome


class Predictor:
    """Scores rows with what ``ServedModels`` serves now and logs every prediction."""

    def __init__(
        self,
        pipeline: str,
        spec: DatasetSpec,
        models: ServedModels,
        log: PredictionLog,
        recent: RecentPredictions,
    ) -> None:
        self.pipeline = pipeline
        self.spec = spec
        self.models = models
        self.log = log
        self.recent = recent
        self._labels = np.asarray(spec.classes, dtype=object)

    def predict(self, rows: Rows) -> Predicted:
        """Route, score, label, log. ``ModelUnavailableError`` when no champion serves."""
        snapshot = self.models.current()
        snapshot.require_champion()
        n = len(rows.entity_ids)
        columns = self._arrays(rows.columns)
        variants = self._route(snapshot, rows.entity_ids)
        versions = np.zeros(n, dtype=np.int64)
        classification = self.spec.task != "regression"
        scores = np.zeros((n, len(self._labels))) if classification else np.zeros(n)
        for variant in (CHAMPION, CHALLENGER):
            served = snapshot.model(variant)
            where = np.flatnonzero(variants == variant)
            if served is None or len(where) == 0:
                continue
            part = {name: values[where] for name, values in columns.items()}
            result = served.scorer.scores(part)
            if classification:
                scores[np.ix_(where, self._positions(served.model.classes))] = result
            else:
                scores[where] = result
            versions[where] = served.version
        return self._finish(snapshot, rows.entity_ids, variants, versions, scores)

    def _arrays(self, columns: dict[str, list[Any]]) -> dict[str, np.ndarray]:
        arrays = {
            name: np.array(columns[name], dtype=np.float64) for name in self.spec.numeric_features
        }
        for name in self.spec.categorical_features:
            values = np.empty(len(columns[name]), dtype=object)
            values[:] = columns[name]
            arrays[name] = values
        return arrays

    @staticmethod
    def _route(snapshot: Snapshot, entity_ids: list[str]) -> np.ndarray:
        if snapshot.router is None or not entity_ids:
            return np.full(len(entity_ids), CHAMPION, dtype=object)
        return snapshot.router.assign_many(entity_ids)

    def _positions(self, classes: Sequence[str]) -> list[int]:
        order = list(self.spec.classes)
        return [order.index(label) for label in classes]

    def _finish(
        self,
        snapshot: Snapshot,
        entity_ids: list[str],
        variants: np.ndarray,
        versions: np.ndarray,
        scores: np.ndarray,
    ) -> Predicted:
        n = len(entity_ids)
        rollout = snapshot.rollout if snapshot.router is not None else None
        rollout_id = rollout.id if rollout is not None else None
        ids = new_ids(n)
        if self.spec.task == "regression":
            labels: list[Any] = [None] * n
            values = scores.tolist()
            predictions: list[Any] = values
            probabilities = None
        else:
            labels = self._labels[scores.argmax(axis=1)].tolist() if n else []
            top = scores[:, -1] if self.spec.task == "binary" else scores.max(axis=1)
            values = top.tolist()
            predictions = labels
            probabilities = {
                label: scores[:, j].tolist() for j, label in enumerate(self.spec.classes)
            }
        variant_list = variants.tolist()
        version_list = versions.tolist()
        logged = self._log(ids, entity_ids, variant_list, version_list, labels, values, rollout)
        self.recent.remember(ids, entity_ids)
        return Predicted(
            ids,
            entity_ids,
            variant_list,
            version_list,
            predictions,
            probabilities,
            rollout_id,
            logged,
        )

    def _log(
        self,
        ids: list[str],
        entity_ids: list[str],
        variants: list[str],
        versions: list[int],
        labels: list[Any],
        values: list[float],
        rollout: Any,
    ) -> int:
        created_at: datetime = utc_now()
        rollout_id = rollout.id if rollout is not None else None
        step = rollout.step if rollout is not None else None
        pipeline = self.pipeline
        return self.log.add_predictions(
            Prediction(i, pipeline, e, v, m, rollout_id, lab, val, created_at, step)
            for i, e, v, m, lab, val in zip(
                ids, entity_ids, variants, versions, labels, values, strict=True
            )
        )


class _Clock:
    """The last (millisecond, counter) handed out, so ids keep increasing within the process."""

    lock = threading.Lock()
    ms = 0
    counter = 0


COUNTER_BITS = 42  # rand_a (12 bits) and the top 30 bits of rand_b count within a millisecond


def new_ids(n: int) -> list[str]:
    """``n`` version-7 UUIDs (RFC 9562) as 32 hex digits, increasing within the process.

    48 bits of Unix milliseconds, then a 42-bit counter (started at a random value in its lower
    half each new millisecond, and carried on within one), then 32 random bits. Increasing
    ids make "the entity's latest prediction" exact among rows of one batch (which share their
    timestamp) and keep primary-key inserts at the end of the index.
    """
    if n == 0:
        return []
    with _Clock.lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _Clock.ms:  # same millisecond (or the clock stepped back): carry on counting
            ms, start = _Clock.ms, _Clock.counter + 1
        else:
            start = int.from_bytes(os.urandom(6)) >> 7  # 41 bits: room to count
        if start + n >= 1 << COUNTER_BITS:  # the counter would overflow: the next millisecond
            ms, start = ms + 1, 0
        _Clock.ms, _Clock.counter = ms, start + n - 1
    counters = np.arange(start, start + n, dtype=np.uint64)
    high = np.uint64((ms << 16) | 0x7000) | (counters >> np.uint64(30))  # version 7
    low = (
        np.uint64(1 << 63)  # RFC variant 0b10
        | ((counters & np.uint64((1 << 30) - 1)) << np.uint64(32))
        | np.frombuffer(os.urandom(4 * n), dtype=np.uint32).astype(np.uint64)
    )
    text = np.stack([high, low], axis=1).astype(">u8").tobytes().hex()
    return [text[i : i + 32] for i in range(0, 32 * n, 32)]
