"""The period's validation run by the source database: Great Expectations 1.x's SQL datasource
(``add_postgres`` / ``add_sqlite``, else the generic ``add_sql``) over a query asset holding the
period's ``WHERE`` on the time column. The suite is ``core.validation``'s, built from the
table's catalogue instead of a frame, so the outcomes equal the in-memory engine's."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import pandas as pd
import sqlalchemy as sa

from retraining_assets.core.database import make_engine
from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.sources import RecordSource, SqlRecordSource
from retraining_assets.core.validation import (
    NUMERIC_TYPES,
    CheckOutcome,
    PeriodShape,
    ReferenceBounds,
    Tolerances,
    build_suites,
    check_outcomes,
    gx_context,
    run_suite,
    validate_period,
)

_names = itertools.count()


def validate_period_in_database(
    source: SqlRecordSource,
    start: datetime,
    end: datetime,
    spec: DatasetSpec,
    bounds: ReferenceBounds | None = None,
    tolerances: Tolerances | None = None,
    rows: int | None = None,
) -> list[CheckOutcome]:
    """``validate_period`` of the records in ``[start, end)`` of ``source`` (``rows`` of them,
    counted here when not given), every expectation computed by the database: nothing but
    GX's aggregates and a few unexpected examples leave it."""
    columns = source.query(start, end).selected_columns  # the reflected table's, typed
    numeric = frozenset(c.name for c in columns if _holds_numbers(c.type))
    rows = source.count(start, end) if rows is None else rows
    shape = PeriodShape(frozenset(columns.keys()), numeric, rows)
    suites = build_suites(shape, spec, bounds, tolerances or Tolerances(), NUMERIC_TYPES)
    datasource = _datasource(source.url)
    period = datasource.add_query_asset(
        f"period_{next(_names)}", query=period_query(source, start, end)
    )
    types = {c.name: c.type for c in columns}

    def run(expectations: list) -> list[Any]:
        rest = [e for e in expectations if not _type_check(e)]
        results = iter(run_suite(_batch(period), rest) if rest else [])
        return [
            _type_result(e, types[e.column]) if _type_check(e) else next(results)
            for e in expectations
        ]

    try:
        return check_outcomes(suites, run)
    finally:  # the context lives as long as the process: leave no asset behind
        datasource.delete_asset(period.name)


# GX 1.x reads no column types for a query asset (its metric raises KeyError 'type'), and on
# a table asset it resolves type names through the dialect's module, which for SQLite has no
# BIGINT (what pandas writes for int64): the catalogue answers the type check itself.
def _type_check(expectation: Any) -> bool:
    import great_expectations.expectations as gxe  # GX: imported where a suite runs

    return isinstance(expectation, gxe.ExpectColumnValuesToBeInTypeList)


def _type_result(expectation: Any, kind: sa.types.TypeEngine) -> Any:
    """The type expectation's result from the reflected column type, shaped like GX's."""
    from great_expectations.core import ExpectationValidationResult

    return ExpectationValidationResult(
        success=_holds_numbers(kind),
        expectation_config=expectation.configuration,
        result={"observed_value": type(kind).__name__},
    )


def _batch(asset: Any) -> Any:
    return asset.add_batch_definition_whole_table("whole").get_batch()


def period_query(source: SqlRecordSource, start: datetime, end: datetime) -> str:
    """The period's ``SELECT`` in the database's own dialect, values inline (GX's query asset
    takes SQL text)."""
    dialect = make_engine(source.url).dialect
    select = source.query(start, end).order_by(None)  # an ORDER BY inside GX's subquery is waste
    return str(select.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _holds_numbers(kind: sa.types.TypeEngine) -> bool:
    # SQLAlchemy 2.1 moved Float out from under Numeric: name all three
    return isinstance(kind, sa.types.Integer | sa.types.Numeric | sa.types.Float) and not (
        isinstance(kind, sa.types.Boolean)
    )


@lru_cache(maxsize=8)
def _datasource(url: str) -> Any:
    """One GX SQL datasource per database URL in the process's ephemeral context."""
    sources = gx_context().data_sources
    name = f"records_{next(_names)}"
    backend = sa.engine.make_url(url).get_backend_name()
    if backend == "postgresql":
        return sources.add_postgres(name, connection_string=url)
    if backend == "sqlite":
        return sources.add_sqlite(name, connection_string=url)
    return sources.add_sql(name, connection_string=url)


@dataclass(frozen=True)
class PeriodValidation:
    """The outcomes of a large period's checks, how many records they covered, and where they
    ran (for the log)."""

    outcomes: list[CheckOutcome]
    validated_rows: int
    where: str


def validate_large_period(
    source: RecordSource,
    start: datetime,
    end: datetime,
    rows: int,
    sample: pd.DataFrame,
    spec: DatasetSpec,
    bounds: ReferenceBounds | None,
    tolerances: Tolerances,
) -> PeriodValidation:
    """A period of ``rows`` records, too large to copy (above ``RETRAIN_MATERIALIZE_MAX_ROWS``):
    validated in full by the database when it lives in one, else on the seeded ``sample``."""
    if isinstance(source, SqlRecordSource):
        outcomes = validate_period_in_database(source, start, end, spec, bounds, tolerances, rows)
        return PeriodValidation(
            outcomes, rows, "in the database (Great Expectations' SQL datasource)"
        )
    outcomes = validate_period(sample, spec, bounds, tolerances)
    return PeriodValidation(outcomes, len(sample), f"on a seeded sample of {len(sample)}")
