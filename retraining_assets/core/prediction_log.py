"""The prediction log: every prediction served and every outcome observed, written in batches.

Plain Python, no Dagster. The service hands rows to a ``PredictionLog``, which writes them to
the platform database from a background thread, ``batch_size`` rows per round trip or after
``flush_seconds`` at the latest. A failed write keeps the rows and retries; ``close()`` writes
everything still queued, and rows that still cannot be written go to a spool file that the next
``start()`` replays, so a graceful stop never loses a prediction. Writes are idempotent
(``ON CONFLICT DO NOTHING`` on the ids), so a retried batch cannot count twice. A row the
database refuses for its content (a constraint, a value too long) would fail every retry: it is
isolated by halving the batch and set aside in a ``refused-*.jsonl`` file with the reason, so
one bad row never blocks the queue.

The experiment analysis reads the log with aggregate queries: per-variant outcome moments
(``variant_summaries``) and routed entities (``assignment_counts``) of one rollout step.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from retraining_assets.core import schema as tables
from retraining_assets.core.rollout import VariantSummary
from retraining_assets.core.rollout.plan import rollout_metric

log = logging.getLogger(__name__)

VARIANTS = ("champion", "challenger")
MAX_RETRY_SECONDS = 5.0
PG_ROWS_PER_STATEMENT = 1000  # x 10 columns: well under PostgreSQL's 65,535 parameters
LOOKUP_CHUNK = 500  # ids per IN (...) query: well under every database's parameter limit


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


_TABLES = {Prediction: tables.predictions, Outcome: tables.prediction_outcomes}


def _row(record: Prediction | Outcome) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


class PredictionLog:
    """A batched background writer of predictions and outcomes (see the module docstring)."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        batch_size: int = 1000,
        flush_seconds: float = 0.5,
        spool_dir: Path | None = None,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.spool_dir = spool_dir
        self._queue: deque[Prediction | Outcome] = deque()
        self._cond = threading.Condition()
        self._added = 0  # rows ever queued
        self._done = 0  # rows ever written (in queue order)
        self._written = {"predictions": 0, "outcomes": 0}
        self._refused = 0  # rows the database refused, set aside
        self._flush_wanted = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self._replayed: list[tuple[Path, int]] = []  # spool files and the count that empties them

    # --- life cycle ----------------------------------------------------------------------
    def start(self) -> PredictionLog:
        """Start the writer thread, first queueing what an earlier process spooled."""
        if self._thread is None:
            self._replay_spool()
            self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything queued and stop. Rows that cannot be written within ``timeout``
        go to the spool file (kept for the next start); without a spool folder they are
        reported in the error log. Idempotent."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cond:
            left = list(self._queue)
            self._queue.clear()
        if left:
            self._spool(left)

    def __enter__(self) -> PredictionLog:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------
    def add_predictions(self, rows: Iterable[Prediction]) -> None:
        """Queue predictions (returns at once)."""
        self._add(rows)

    def add_outcomes(self, rows: Iterable[Outcome]) -> None:
        """Queue outcomes (returns at once)."""
        self._add(rows)

    def _add(self, rows: Iterable[Prediction | Outcome]) -> None:
        with self._cond:
            if self._closing:
                raise RuntimeError("the prediction log is closed")
            before = len(self._queue)
            self._queue.extend(rows)
            self._added += len(self._queue) - before
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Block until every row queued before this call is written (``TimeoutError`` when
        the database does not take them within ``timeout``)."""
        if self._thread is None:
            raise RuntimeError("the prediction log is not started")
        with self._cond:
            if self._closing:
                raise RuntimeError("the prediction log is closed")
            target = self._added
            self._flush_wanted = True
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: self._done >= target, timeout):
                raise TimeoutError(
                    f"{target - self._done} logged rows not written: {self.last_error}"
                )

    @property
    def backlog(self) -> int:
        """Rows queued but not written yet."""
        with self._cond:
            return self._added - self._done

    @property
    def written(self) -> dict[str, int]:
        """Rows this log has written, by kind."""
        with self._cond:
            return dict(self._written)

    @property
    def refused(self) -> int:
        """Rows the database refused (constraint or value errors), set aside, not retried."""
        with self._cond:
            return self._refused

    # --- the writer thread ---------------------------------------------------------------
    def _run(self) -> None:
        failures = 0
        while True:
            with self._cond:
                if failures:  # back off before retrying, unless stopping
                    self._cond.wait_for(lambda: self._closing, self._backoff(failures))
                else:
                    self._cond.wait_for(self._due, self.flush_seconds)
                self._flush_wanted = False
                if not self._queue:
                    if self._closing:
                        return
                    continue
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), 10_000))]
            try:
                counts, refused = self._write_isolating(batch)
            except sa.exc.SQLAlchemyError as error:
                failures += 1
                with self._cond:
                    self._queue.extendleft(reversed(batch))
                    self.last_error = _first_line(error)
                log.warning("prediction log write failed (%s); will retry", self.last_error)
                if self._closing and failures >= 3:
                    return  # close() spools what is left
                continue
            failures = 0
            if refused:
                self._set_aside(refused)
            with self._cond:
                self._done += len(batch)
                for kind, count in counts.items():
                    self._written[kind] += count
                self._refused += len(refused)
                self.last_error = None
                self._cond.notify_all()
            self._forget_replayed()

    def _due(self) -> bool:
        return self._closing or self._flush_wanted or len(self._queue) >= self.batch_size

    @staticmethod
    def _backoff(failures: int) -> float:
        return min(MAX_RETRY_SECONDS, 0.1 * 2**failures)

    def _write_isolating(
        self, batch: list[Prediction | Outcome]
    ) -> tuple[dict[str, int], list[tuple[Prediction | Outcome, str]]]:
        """Write ``batch``; when the database refuses a row for what it holds (a constraint
        or a value it cannot store: the same on every retry), halve the batch until that row
        stands alone, and return it with the reason instead of blocking the queue forever.
        Any other error (a lost connection, a locked database) propagates: retry later."""
        try:
            return self._write(batch), []
        except (sa.exc.IntegrityError, sa.exc.DataError) as error:
            if len(batch) == 1:
                return {"predictions": 0, "outcomes": 0}, [(batch[0], _first_line(error))]
            half = len(batch) // 2
            first, refused_first = self._write_isolating(batch[:half])
            second, refused_second = self._write_isolating(batch[half:])
            counts = {kind: first[kind] + second[kind] for kind in first}
            return counts, refused_first + refused_second

    def _write(self, batch: list[Prediction | Outcome]) -> dict[str, int]:
        """One transaction: predictions first, then outcomes, in chunks of ``batch_size``."""
        grouped: dict[type, list[dict[str, Any]]] = {Prediction: [], Outcome: []}
        for record in batch:
            grouped[type(record)].append(_row(record))
        with self.engine.begin() as connection:
            for kind, rows in grouped.items():
                for start in range(0, len(rows), self.batch_size):
                    insert_ignoring_duplicates(
                        connection, _TABLES[kind], rows[start : start + self.batch_size]
                    )
        return {"predictions": len(grouped[Prediction]), "outcomes": len(grouped[Outcome])}

    # --- spool ---------------------------------------------------------------------------
    def _spool(self, rows: list[Prediction | Outcome]) -> None:
        if self.spool_dir is None:
            log.error("prediction log: %d rows could not be written and are lost", len(rows))
            return
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"prediction-log-{uuid.uuid4().hex}.jsonl"
        with path.open("w") as out:
            for record in rows:
                out.write(json.dumps(_spooled(record)) + "\n")
        log.warning("prediction log: %d unwritten rows spooled to %s", len(rows), path)

    def _set_aside(self, refused: list[tuple[Prediction | Outcome, str]]) -> None:
        """Rows the database refuses go to a ``refused-*.jsonl`` file (never replayed by
        itself: a person looks at the reason first) or, without a spool folder, the error log."""
        reason = refused[0][1]
        if self.spool_dir is None:
            log.error("prediction log: %d rows refused and dropped: %s", len(refused), reason)
            return
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"refused-{uuid.uuid4().hex}.jsonl"
        with path.open("w") as out:
            for record, why in refused:
                out.write(json.dumps({**_spooled(record), "reason": why}) + "\n")
        log.error(
            "prediction log: %d rows refused, set aside in %s: %s", len(refused), path, reason
        )

    def _replay_spool(self) -> None:
        if self.spool_dir is None or not self.spool_dir.exists():
            return
        for path in sorted(self.spool_dir.glob("prediction-log-*.jsonl")):
            rows = [_from_spool(line) for line in path.read_text().splitlines() if line]
            self._add(rows)
            self._replayed.append((path, self._added))

    def _forget_replayed(self) -> None:
        with self._cond:
            done = [item for item in self._replayed if item[1] <= self._done]
            self._replayed = [item for item in self._replayed if item[1] > self._done]
        for path, _ in done:
            path.unlink(missing_ok=True)


def _spooled(record: Prediction | Outcome) -> dict[str, Any]:
    values = _row(record)
    stamp = "created_at" if isinstance(record, Prediction) else "received_at"
    values[stamp] = values[stamp].isoformat()
    return {"kind": type(record).__name__, **values}


def _first_line(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0]}"


def _from_spool(line: str) -> Prediction | Outcome:
    values = json.loads(line)
    kind = Prediction if values.pop("kind") == "Prediction" else Outcome
    stamp = "created_at" if kind is Prediction else "received_at"
    values[stamp] = datetime.fromisoformat(values[stamp])
    return kind(**values)


def insert_ignoring_duplicates(
    connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]
) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING`` of ``rows``. On psycopg2, SQLAlchemy sends such
    an insert one row per round trip (its multi-row "insertmanyvalues" mode leaves ON CONFLICT
    statements out, sqlalchemy#6581): about 5k rows/s. There, one multi-row VALUES statement
    per ``PG_ROWS_PER_STATEMENT`` rows is sent instead (~6x faster, BENCHMARKS.md), through
    ``exec_driver_sql`` so errors still arrive as SQLAlchemy exceptions."""
    if not rows:
        return
    if connection.dialect.driver != "psycopg2":
        if connection.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        connection.execute(insert(table).on_conflict_do_nothing(), rows)
        return
    columns = tuple(column.name for column in table.columns)
    for start in range(0, len(rows), PG_ROWS_PER_STATEMENT):
        part = rows[start : start + PG_ROWS_PER_STATEMENT]
        values = tuple(row[column] for row in part for column in columns)
        connection.exec_driver_sql(_values_sql(table.name, columns, len(part)), values)


@functools.lru_cache(maxsize=32)
def _values_sql(table: str, columns: tuple[str, ...], rows: int) -> str:
    one = f"({', '.join(['%s'] * len(columns))})"
    names = ", ".join(f'"{column}"' for column in columns)
    return (
        f'INSERT INTO "{table}" ({names}) VALUES {", ".join([one] * rows)} ON CONFLICT DO NOTHING'
    )


# --- reading -----------------------------------------------------------------------------


def find_prediction(
    engine: sa.Engine,
    pipeline: str,
    *,
    prediction_id: str | None = None,
    entity_id: str | None = None,
) -> Prediction | None:
    """A logged prediction by its id, or the entity's latest one."""
    p = tables.predictions
    if (prediction_id is None) == (entity_id is None):
        raise ValueError("give exactly one of prediction_id and entity_id")
    query = sa.select(p).where(p.c.pipeline == pipeline)
    if prediction_id is not None:
        query = query.where(p.c.id == prediction_id)
    else:
        # rows of one batch share created_at; the service's ids increase (UUIDv7) to break ties
        latest = (p.c.created_at.desc(), p.c.id.desc())
        query = query.where(p.c.entity_id == entity_id).order_by(*latest).limit(1)
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return None if row is None else Prediction(**row._mapping)


def entities_of(engine: sa.Engine, pipeline: str, ids: Sequence[str]) -> dict[str, str]:
    """The entity of each logged prediction among ``ids`` (unknown ids are left out)."""
    p = tables.predictions
    found: dict[str, str] = {}
    with engine.connect() as connection:
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = list(ids[start : start + LOOKUP_CHUNK])
            query = sa.select(p.c.id, p.c.entity_id).where(
                p.c.pipeline == pipeline, p.c.id.in_(chunk)
            )
            found.update(connection.execute(query).tuples().all())
    return found


def _step_filter(
    pipeline: str, rollout_id: int, since: datetime | None, step: int | None
) -> list[sa.ColumnElement[bool]]:
    p = tables.predictions
    where = [p.c.pipeline == pipeline, p.c.rollout_id == rollout_id]
    if since is not None:
        where.append(p.c.created_at >= since)
    if step is not None:
        where.append(p.c.rollout_step == step)
    return where


def variant_summaries(
    engine: sa.Engine,
    pipeline: str,
    rollout_id: int,
    since: datetime | None,
    task: str,
    *,
    step: int | None = None,
) -> dict[str, VariantSummary]:
    """Per variant, the outcomes of the rollout's predictions made since ``since`` (and, with
    ``step``, routed by that step): correctness (0/1) for classification, absolute error for
    regression. Always has a ``champion`` and a ``challenger`` entry."""
    p, o = tables.predictions, tables.prediction_outcomes
    if rollout_metric(task)[0] == "binary":
        per_row = sa.case((p.c.label == o.c.label, 1.0), else_=0.0)
        squared = per_row
    else:
        per_row = sa.func.abs(p.c.value - o.c.value)
        squared = per_row * per_row
    query = (
        sa.select(p.c.variant, sa.func.count(), sa.func.sum(per_row), sa.func.sum(squared))
        .select_from(p.join(o, o.c.prediction_id == p.c.id))
        .where(*_step_filter(pipeline, rollout_id, since, step))
        .group_by(p.c.variant)
    )
    with engine.connect() as connection:
        found = {row[0]: row for row in connection.execute(query)}
    summaries = {name: VariantSummary.from_moments(name, 0, 0.0, 0.0) for name in VARIANTS}
    for name, (_, n, total, total_sq) in found.items():
        summaries[name] = VariantSummary.from_moments(name, n, float(total), float(total_sq))
    return summaries


def assignment_counts(
    engine: sa.Engine,
    pipeline: str,
    rollout_id: int,
    since: datetime | None,
    *,
    step: int | None = None,
) -> dict[str, int]:
    """Distinct entities routed to each variant (the units of the SRM check)."""
    p = tables.predictions
    query = (
        sa.select(p.c.variant, sa.func.count(sa.distinct(p.c.entity_id)))
        .where(*_step_filter(pipeline, rollout_id, since, step))
        .group_by(p.c.variant)
    )
    with engine.connect() as connection:
        counts = dict.fromkeys(VARIANTS, 0) | {v: int(n) for v, n in connection.execute(query)}
    return counts


def outcome_count(
    engine: sa.Engine,
    pipeline: str,
    rollout_id: int,
    since: datetime | None,
    *,
    step: int | None = None,
) -> int:
    """How many outcomes the rollout's predictions since ``since`` have (a cheap COUNT)."""
    p, o = tables.predictions, tables.prediction_outcomes
    query = (
        sa.select(sa.func.count())
        .select_from(p.join(o, o.c.prediction_id == p.c.id))
        .where(*_step_filter(pipeline, rollout_id, since, step))
    )
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def count_rows(engine: sa.Engine, pipeline: str) -> dict[str, int]:
    """Logged predictions and outcomes of ``pipeline``."""
    with engine.connect() as connection:
        return {
            kind: int(
                connection.execute(
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where(table.c.pipeline == pipeline)
                ).scalar_one()
            )
            for kind, table in (
                ("predictions", tables.predictions),
                ("outcomes", tables.prediction_outcomes),
            )
        }
