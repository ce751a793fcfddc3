"""Validation of one period of records with Great Expectations 1.x.

Blocking checks (schema, target, at least one row) decide whether a period may flow on to
drift detection and training. Warning checks (ranges, domains, null rates) learn their
bounds from the reference data; drifted periods are exactly the ones that break them, so they
only warn and never stop drift detection or retraining.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from retraining_assets.core.dataset import DatasetSpec, is_numeric_dtype

# great_expectations is imported where a suite is built or run, not here: it takes seconds,
# and most processes that load this module (the CLI, the code location) never validate
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

EXAMPLES = 5
NUMERIC_TYPES = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Float32",
    "Float64",
]


@dataclass(frozen=True)
class CheckDefinition:
    name: str
    blocking: bool
    description: str


CHECKS: tuple[CheckDefinition, ...] = (
    CheckDefinition("schema", True, "Every spec column is present with the expected dtype."),
    CheckDefinition("target_valid", True, "The target is never null and holds known classes."),
    CheckDefinition("non_empty", True, "The period has at least one record."),
    CheckDefinition("numeric_ranges", False, "Numeric values stay within the reference range."),
    CheckDefinition("categorical_domains", False, "Categories were seen in the reference."),
    CheckDefinition("null_rates", False, "Null rates do not rise above the reference's."),
)


@dataclass(frozen=True)
class Tolerances:
    range_tolerance: float = 0.1
    allowed_out_of_range_share: float = 0.01
    allowed_unseen_share: float = 0.05
    null_rate_tolerance: float = 0.05


@dataclass(frozen=True)
class ReferenceBounds:
    """What the warning checks compare against, learned from the reference records."""

    ranges: dict[str, tuple[float, float]]
    domains: dict[str, list[str]]
    null_rates: dict[str, float]

    @classmethod
    def learn(cls, frame: pd.DataFrame, spec: DatasetSpec) -> ReferenceBounds:
        ranges = {}
        for column in spec.numeric_features:
            values = frame[column].replace([np.inf, -np.inf], np.nan).dropna()
            if len(values):
                ranges[column] = (float(values.min()), float(values.max()))
        domains = {
            column: sorted(frame[column].dropna().astype(str).unique().tolist())
            for column in spec.categorical_features
        }
        nulls = {column: float(frame[column].isna().mean()) for column in spec.features}
        return cls(ranges=ranges, domains=domains, null_rates=nulls if len(frame) else {})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ReferenceBounds:
        ranges = {column: (float(lo), float(hi)) for column, (lo, hi) in raw["ranges"].items()}
        return cls(ranges=ranges, domains=raw["domains"], null_rates=raw["null_rates"])


@dataclass
class CheckOutcome:
    """The result of one named check: passed or not, and each failed expectation."""

    name: str
    blocking: bool
    passed: bool
    failures: list[dict[str, Any]] = field(default_factory=list)
    expectations: int = 0

    @property
    def summary(self) -> str:
        if self.passed:
            return f"{self.name}: {self.expectations} expectations passed"
        parts = [f"{f['expectation']} on '{f['column']}' ({f['detail']})" for f in self.failures]
        return f"{self.name} failed: " + "; ".join(parts)


@dataclass(frozen=True)
class PeriodShape:
    """What the expectations are built from, whoever runs them: the columns present, those
    holding numbers, and the row count (from a frame, or from the database's catalogue)."""

    columns: frozenset[str]
    numeric: frozenset[str]
    rows: int

    @classmethod
    def of_frame(cls, frame: pd.DataFrame) -> PeriodShape:
        numeric = frozenset(c for c in frame.columns if is_numeric_dtype(frame[c]))
        return cls(frozenset(frame.columns), numeric, len(frame))


def validate_period(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    bounds: ReferenceBounds | None = None,
    tolerances: Tolerances = Tolerances(),
) -> list[CheckOutcome]:
    """Run every check of ``CHECKS`` on ``frame``; warning checks need ``bounds``. The same
    suite runs in the database for SQL sources (``core.engines.gx_sql``)."""
    suites = build_suites(PeriodShape.of_frame(frame), spec, bounds, tolerances, NUMERIC_TYPES)
    return check_outcomes(suites, lambda expectations: _run(frame, expectations))


def build_suites(
    shape: PeriodShape,
    spec: DatasetSpec,
    bounds: ReferenceBounds | None,
    tolerances: Tolerances,
    numeric_types: list[str],
) -> dict[str, list]:
    """Each check's expectations; ``numeric_types``: the type names that count as numbers
    where the suite runs (pandas dtypes, or SQL types)."""
    import great_expectations.expectations as gxe

    return {
        "schema": _schema_expectations(shape, spec, numeric_types),
        "target_valid": _target_expectations(shape, spec),
        "non_empty": [gxe.ExpectTableRowCountToBeBetween(min_value=1)],
        "numeric_ranges": _range_expectations(shape, bounds, tolerances),
        "categorical_domains": _domain_expectations(shape, bounds, tolerances),
        "null_rates": _null_expectations(shape, bounds, tolerances),
    }


def check_outcomes(suites: dict[str, list], run: Callable[[list], list[Any]]) -> list[CheckOutcome]:
    """One outcome per check of ``CHECKS`` from one GX run (``run``: the expectations in,
    one result each in the same order out)."""
    # one GX run per period: a validation costs far more than the expectations it holds
    ordered = [(check, e) for check in CHECKS for e in suites[check.name]]
    results = run([expectation for _, expectation in ordered])
    outcomes = []
    for check in CHECKS:
        failures = [
            _failure(result)
            for (owner, _), result in zip(ordered, results, strict=True)
            if owner is check and not result.success
        ]
        outcomes.append(
            CheckOutcome(
                name=check.name,
                blocking=check.blocking,
                passed=not failures,
                failures=failures,
                expectations=len(suites[check.name]),
            )
        )
    return outcomes


def _schema_expectations(shape: PeriodShape, spec: DatasetSpec, numeric_types: list[str]) -> list:
    import great_expectations.expectations as gxe

    expectations = [gxe.ExpectColumnToExist(column=column) for column in spec.columns]
    if shape.rows:  # an empty period has no values whose type could be judged
        numeric = [*spec.numeric_features, *([spec.target] if spec.task == "regression" else [])]
        expectations += [
            gxe.ExpectColumnValuesToBeInTypeList(column=column, type_list=numeric_types)
            for column in numeric
            if column in shape.columns
        ]
    return expectations


def _target_expectations(shape: PeriodShape, spec: DatasetSpec) -> list:
    import great_expectations.expectations as gxe

    if spec.target not in shape.columns:
        return []
    expectations = [gxe.ExpectColumnValuesToNotBeNull(column=spec.target)]
    if spec.classes and spec.task != "regression":
        known = list(spec.classes)
        if spec.target in shape.numeric:
            known = [float(label) for label in known if _is_number(label)]
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column=spec.target, value_set=known))
    return expectations


def _range_expectations(
    shape: PeriodShape, bounds: ReferenceBounds | None, tol: Tolerances
) -> list:
    import great_expectations.expectations as gxe

    if bounds is None or not shape.rows:
        return []
    expectations = []
    for column, (low, high) in bounds.ranges.items():
        if column in shape.numeric:
            margin = tol.range_tolerance * max(high - low, abs(high), 1e-9)
            expectations.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=column,
                    min_value=low - margin,
                    max_value=high + margin,
                    mostly=1 - tol.allowed_out_of_range_share,
                )
            )
    return expectations


def _domain_expectations(
    shape: PeriodShape, bounds: ReferenceBounds | None, tol: Tolerances
) -> list:
    import great_expectations.expectations as gxe

    if bounds is None or not shape.rows:
        return []
    return [
        gxe.ExpectColumnValuesToBeInSet(
            column=column, value_set=domain, mostly=1 - tol.allowed_unseen_share
        )
        for column, domain in bounds.domains.items()
        if column in shape.columns and domain
    ]


def _null_expectations(shape: PeriodShape, bounds: ReferenceBounds | None, tol: Tolerances) -> list:
    import great_expectations.expectations as gxe

    if bounds is None or not shape.rows:
        return []
    return [
        gxe.ExpectColumnValuesToNotBeNull(
            column=column, mostly=max(0.0, 1 - min(1.0, rate + tol.null_rate_tolerance))
        )
        for column, rate in bounds.null_rates.items()
        if column in shape.columns
    ]


def _run(frame: pd.DataFrame, expectations: list) -> list[Any]:
    """Validate and return one result per expectation, in the order given."""
    return run_suite(
        _batch_definition().get_batch(batch_parameters={"dataframe": frame}), expectations
    )


def run_suite(batch: Any, expectations: list) -> list[Any]:
    """Validate ``batch`` (any GX batch: a frame, a SQL query) against ``expectations``; one
    result per expectation, in the order given."""
    import great_expectations as gx

    for index, expectation in enumerate(expectations):
        expectation.meta = {"index": index}  # GX reorders results; the index maps them back
    suite = gx.ExpectationSuite(name="period", expectations=expectations)
    # BASIC still gives the counts and example values a failure reports; the default SUMMARY
    # adds value counts nobody reads, a third of a demo period's validation time
    result = batch.validate(suite, result_format="BASIC")
    return sorted(result.results, key=lambda item: item.expectation_config.meta["index"])


def _failure(item: Any) -> dict[str, Any]:
    config = item.expectation_config
    outcome = item.result or {}
    if config.type == "expect_column_to_exist":
        detail = "column is missing"
    elif item.exception_info and item.exception_info.get("raised_exception"):
        detail = str(item.exception_info.get("exception_message", "expectation raised"))[:200]
    elif "unexpected_percent" in outcome:
        detail = (
            f"{outcome.get('unexpected_count')} of {outcome.get('element_count')} rows unexpected"
        )
    else:
        detail = f"observed {outcome.get('observed_value')!r}"
    examples = [
        _plain(value) for value in (outcome.get("partial_unexpected_list") or [])[:EXAMPLES]
    ]
    return {
        "expectation": config.type,
        "column": config.kwargs.get("column") or "(table)",
        "detail": detail,
        "examples": examples,
    }


@lru_cache(maxsize=1)
def gx_context() -> Any:
    """One ephemeral GX context per process: building it costs more than a validation."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


@lru_cache(maxsize=1)
def _batch_definition() -> Any:
    source = gx_context().data_sources.add_pandas("records")
    return source.add_dataframe_asset("period").add_batch_definition_whole_dataframe("whole")


def _plain(value: Any) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
