"""Gathering the retrain signals cheaply: materialization metadata, a SQL count, the registry.

Sensors and the demo call ``gather_signals`` and hand the result to ``RetrainPolicy.decide``;
nothing here loads a period of data or compares a signal with a threshold.
"""

from datetime import UTC, datetime

import dagster as dg

from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.registry import CHAMPION, Registry
from retraining_assets.core.sources import RecordSource
from retraining_assets.core.triggers import Signals


def period_metadata(
    instance: dg.DagsterInstance, asset: dg.AssetKey, partition: str, *, after: datetime | None
) -> dict[str, object]:
    """The metadata of the latest materialization of one partition, if it is newer than
    ``after`` (a signal the last training already acted on is not a reason again)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return {}
    recorded = datetime.fromtimestamp(records[0].timestamp, UTC).replace(tzinfo=None)
    if after is not None and recorded <= after:
        return {}
    return {key: value.value for key, value in records[0].asset_materialization.metadata.items()}


def gather_signals(
    instance: dg.DagsterInstance,
    pipeline: Pipeline,
    registry: Registry,
    source: RecordSource,
    partition: str,
    *,
    now: datetime,
    scheduled: bool = False,
) -> Signals:
    """Everything the retrain decision needs for ``partition``, read without loading data."""
    name = pipeline.name
    versions = registry.list_versions(name)
    last_training = versions[-1].created_at if versions else None
    drift_values = period_metadata(
        instance, dg.AssetKey([name, "drift_report"]), partition, after=last_training
    )
    live = period_metadata(
        instance, dg.AssetKey([name, "champion_performance"]), partition, after=last_training
    )
    return Signals(
        has_champion=registry.get_alias(name, CHAMPION) is not None,
        drift_detected=drift_values.get("drift_detected"),
        drifted_features=tuple(drift_values.get("drifted_features") or ()),
        new_records=source.count_since(registry.get_watermark(name)),
        live_metric=_number(live.get("live_metric")),
        baseline_metric=_number(live.get("baseline_metric")),
        higher_is_better=pipeline.higher_is_better,
        scheduled=scheduled,
        last_training=last_training,
        now=now,
    )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
