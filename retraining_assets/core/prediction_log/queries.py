"""The prediction log's SQL: idempotent multi-row inserts, and the reads of the service (a
prediction by id or entity) and of the experiment analysis (per-variant outcome moments and
routed entities of one rollout step, as aggregate queries)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from retraining_assets.core import schema as tables
from retraining_assets.core.prediction_log.records import Prediction
from retraining_assets.core.rollout import VariantSummary
from retraining_assets.core.rollout.plan import rollout_metric

VARIANTS = ("champion", "challenger")
PG_ROWS_PER_STATEMENT = 1000  # x 10 columns: well under PostgreSQL's 65,535 parameters
LOOKUP_CHUNK = 500  # ids per IN (...) query: well under every database's parameter limit


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


def find_outcomes(
    engine: sa.Engine, pipeline: str, prediction_ids: Sequence[str]
) -> dict[str, tuple[str | None, float | None]]:
    """The recorded outcome ``(label, value)`` of each prediction among ``prediction_ids``
    that has one."""
    o = tables.prediction_outcomes
    found: dict[str, tuple[str | None, float | None]] = {}
    with engine.connect() as connection:
        for start in range(0, len(prediction_ids), LOOKUP_CHUNK):
            chunk = list(prediction_ids[start : start + LOOKUP_CHUNK])
            query = sa.select(o.c.prediction_id, o.c.label, o.c.value).where(
                o.c.pipeline == pipeline, o.c.prediction_id.in_(chunk)
            )
            found.update((i, (label, value)) for i, label, value in connection.execute(query))
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
