"""Pipeline configuration: one model kept fresh = a name, a record source, a spec, settings.

The Dagster graph is built from a ``Pipeline`` by ``defs.factory.build_pipeline_defs``; one
code location can hold several pipelines, their asset keys prefixed by the pipeline's name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import pandas as pd

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.demo import SPEC as DEMO_SPEC
from retraining_assets.core.demo import DemoStream
from retraining_assets.core.drift import DriftThresholds
from retraining_assets.core.evaluation import get_metric, primary_metric_for
from retraining_assets.core.locations import Location
from retraining_assets.core.promotion import PromotionPolicy
from retraining_assets.core.reports import report_url, reports_root
from retraining_assets.core.rollout import RolloutPlan, RolloutPlanError, rollout_metric
from retraining_assets.core.rollout.plan import AB_SHARE
from retraining_assets.core.sources import RecordSource, SourceError, SqlRecordSource, open_source
from retraining_assets.core.timescales import TimeScales
from retraining_assets.core.triggers import RetrainPolicy
from retraining_assets.core.validation import Tolerances
from retraining_assets.settings import Settings, load_settings

DEMO_PERIOD = "weekly"  # fine enough to react within days, ~117 periods within the budget
DEMO_DRIFT_WINDOW = 2  # weeks: ~2,300 demo records, a shift is judged soon after it starts
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Pipeline:
    """Everything the asset factory needs to keep one model fresh."""

    name: str
    source: RecordSource
    spec: DatasetSpec
    settings: Settings
    start: str  # first partition, YYYY-MM-DD

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(
                f"pipeline name '{self.name}' must be lowercase letters, digits and underscores"
            )

    @cached_property
    def timescales(self) -> TimeScales:
        """The monitoring period, drift window, training window and schedule: every window
        of this pipeline comes from here (built once)."""
        return self.settings.timescales

    @property
    def data_start(self) -> datetime:
        """The start of the first partition."""
        return datetime.fromisoformat(self.start)

    @property
    def primary_metric(self) -> str:
        return primary_metric_for(self.spec.task, self.settings.primary_metric)

    @property
    def higher_is_better(self) -> bool:
        return get_metric(self.primary_metric).higher_is_better

    def can_train(self, period_start: datetime) -> bool:
        """Whether a whole training window ends with the period starting at ``period_start``."""
        return self.timescales.can_train(period_start, self.data_start)

    def described(self, rows: int) -> bool:
        """Whether a period of ``rows`` records is too large to copy
        (``RETRAIN_MATERIALIZE_MAX_ROWS``): it is stored as a description, and read only as
        its seeded sample (``period_sample``)."""
        limit = self.settings.materialize_max_rows
        return bool(limit) and rows > limit

    def period_sample(
        self, source: RecordSource, start: datetime, end: datetime, rows: int, partition: str
    ) -> pd.DataFrame:
        """The seeded sample of a described period (the one ``current_data`` validates)."""
        return source.sample(start, end, self.timescales.drift_sample(rows, partition))

    def drift_thresholds(self) -> DriftThresholds:
        return self.settings.drift_thresholds()

    def reports_folder(self, *parts: str) -> Location:
        """Where this pipeline's HTML/PNG reports go (``<artifact root>/reports/<name>/...``,
        local or on object storage): ``reports_folder(partition)`` for a period's drift
        report. Write into it with ``core.reports.published``."""
        return reports_root(self.settings).joinpath(self.name, *parts)

    def report_url(self, path: Location) -> str:
        """Where the report server serves report ``path`` (a file under the reports folder)."""
        return report_url(self.settings.reports_url, reports_root(self.settings), path)

    def reference_window(self) -> tuple[datetime, datetime]:
        """The first whole training window: the drift reference until a champion exists."""
        return self.timescales.first_training_window(self.data_start)


def validation_tolerances(settings: Settings) -> Tolerances:
    """The warning checks' tolerances, all from settings."""
    return Tolerances(
        range_tolerance=settings.range_tolerance,
        allowed_out_of_range_share=settings.allowed_out_of_range_share,
        allowed_unseen_share=settings.allowed_unseen_share,
        null_rate_tolerance=settings.null_rate_tolerance,
    )


def retrain_policy(settings: Settings) -> RetrainPolicy:
    """The retrain decision's thresholds, all from settings."""
    return RetrainPolicy(
        volume_threshold=settings.volume_trigger,
        degradation=settings.performance_degradation,
        cooldown=timedelta(hours=settings.retrain_cooldown_hours),
    )


def promotion_policy(settings: Settings) -> PromotionPolicy:
    """The promotion gate's thresholds, all from settings."""
    return PromotionPolicy(min_lift=settings.promotion_min_lift, floor=settings.promotion_floor)


def rolls_out(pipeline: Pipeline, champion_version: int | None) -> bool:
    """Whether a candidate that passed the gate starts a rollout (``promotion_strategy``
    canary, gradual or ab) instead of becoming the champion at once. A pipeline's first model
    has no champion to be rolled out against."""
    return pipeline.settings.promotion_strategy != "immediate" and champion_version is not None


def rollout_plan(
    pipeline: Pipeline,
    strategy: str | None = None,
    *,
    steps: Sequence[float] | None = None,
    min_hours: float | None = None,
    min_samples: int | None = None,
) -> RolloutPlan:
    """How a challenger of ``pipeline`` is rolled out and judged, from settings; the keyword
    arguments (the ``retrain rollout start`` options) override them.

    ``strategy`` defaults to ``promotion_strategy``. ``gradual`` ramps through every share of
    ``rollout_steps``; ``canary`` holds the first of them and ``ab`` holds ``AB_SHARE`` (one
    share given in ``steps`` overrides either). Each step lasts ``rollout_min_hours`` and
    ``rollout_min_samples`` outcomes per arm. The live metric follows the task: whether the
    served prediction was correct (classification, higher is better) or its absolute error
    (regression, lower is better). Raises ``RolloutPlanError`` naming a bad value.
    """
    settings = pipeline.settings
    strategy = strategy or settings.promotion_strategy
    metric, higher_is_better = rollout_metric(pipeline.spec.task)
    raw: dict[str, Any] = {
        "strategy": strategy,
        "metric": metric,
        "higher_is_better": higher_is_better,
        "sequential": settings.rollout_sequential,
        "alpha": settings.rollout_alpha,
        "max_samples": settings.rollout_max_samples,
    }
    limits = {
        "min_hours": settings.rollout_min_hours if min_hours is None else min_hours,
        "min_samples": settings.rollout_min_samples if min_samples is None else min_samples,
    }
    shares = list(steps) if steps else None
    if strategy == "gradual":
        raw["steps"] = [{"share": share, **limits} for share in shares or settings.rollout_steps]
    elif strategy in ("canary", "ab"):
        if shares is not None and len(shares) != 1:
            raise RolloutPlanError(f"{strategy} holds one share, got {len(shares)}: {shares}")
        default = settings.rollout_steps[0] if strategy == "canary" else AB_SHARE
        raw |= limits | {"share": shares[0] if shares else default}
    elif shares is not None or min_hours is not None or min_samples is not None:
        raise RolloutPlanError(f"{strategy} takes no steps, minimum hours or minimum samples")
    return RolloutPlan.from_dict(raw)


def demo_defaults(settings: Settings, stream: DemoStream | None = None) -> Settings:
    """The demo's own time scales, unless set: weekly monitoring periods with a two-week drift
    window and a volume trigger of a month of demo records, so its 27 months fit the 10-minute
    budget. ``retrain demo`` and the code location (``make dev``) both read them, so the UI
    shows the partitions the demo ran."""
    chosen = settings.model_fields_set
    defaults: dict[str, Any] = {
        "partition": DEMO_PERIOD,
        "drift_window": DEMO_DRIFT_WINDOW,
        "volume_trigger": (stream or DemoStream()).rows_per_month,
    }
    update = {key: value for key, value in defaults.items() if key not in chosen}
    if not update:
        return settings
    return load_settings(**(settings.model_dump(include=chosen) | update))


def demo_pipeline(settings: Settings, stream: DemoStream | None = None) -> Pipeline:
    """The embedded demo: the demo stream in the platform database."""
    stream = stream or DemoStream()
    settings = demo_defaults(settings, stream)
    source = SqlRecordSource(
        url=settings.platform_database_url, table="demo_records", time_column=DEMO_SPEC.time_column
    )
    start = settings.partition_start or stream.first_month.strftime("%Y-%m-%d")
    return Pipeline(name="demo", source=source, spec=DEMO_SPEC, settings=settings, start=start)


def user_pipeline(settings: Settings) -> Pipeline:
    """A pipeline over the user's own table, configured by ``RETRAIN_SOURCE_*`` settings.

    The spec is inferred from the first records unless features are given explicitly.
    """
    # Settings refuses a source without RETRAIN_TIME_COLUMN and RETRAIN_TARGET
    assert settings.time_column and settings.target
    source = open_source(
        settings.time_column,
        url=settings.source_url,
        table=settings.source_table,
        path=settings.source_path,
    )
    span = source.time_range()
    if span is None:
        raise SourceError(f"{source.description} holds no records")
    timescales = settings.timescales
    first = timescales.period_start(pd.Timestamp(settings.partition_start or span[0]).normalize())
    sample = source.load(*timescales.first_training_window(first))
    spec = DatasetSpec.infer(
        sample,
        settings.time_column,
        settings.target,
        task=settings.task,
        numeric_features=settings.numeric_features or None,
        categorical_features=settings.categorical_features or None,
        drop=settings.drop_columns,
        entity_id=settings.entity_id_column,
    )
    return Pipeline(
        name=settings.pipeline_name,
        source=source,
        spec=spec,
        settings=settings,
        start=first.strftime("%Y-%m-%d"),
    )


def configured_pipelines(settings: Settings) -> list[Pipeline]:
    """The demo, plus the user's pipeline when a record source is configured."""
    pipelines = [demo_pipeline(settings)]
    if settings.user_pipeline_configured:
        pipelines.append(user_pipeline(settings))
    return pipelines


def configured_pipeline_names(settings: Settings) -> list[str]:
    """The names of :func:`configured_pipelines`, without opening any record source: what the
    emergency commands (status, approve, reject, rollback) need, whatever source is down."""
    return ["demo", *([settings.pipeline_name] if settings.user_pipeline_configured else [])]
