"""Gathering the retrain signals cheaply: materialization metadata, a SQL count, the registry.

Sensors and the demo call ``gather_signals`` and hand the result to ``RetrainPolicy.decide``;
nothing here loads a period of data or compares a signal with a threshold.
"""

from datetime import UTC, datetime

import dagster as dg

from retraining_assets.core.labels import label_cutoff, labels_complete_period
from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.registry import CHAMPION, Registry
from retraining_assets.core.sources import RecordSource
from retraining_assets.core.triggers import Cause, RetrainDecision, Signals

DRIFTED_TAG = "retrain/drifted_features"  # the drift a run acts on (comma-separated)
REQUESTED_AT = "retrain/requested_at"
"""Run tag: the moment (naive UTC, ISO 8601) a sensor or schedule asked for the run, by the
clock it runs on: the retrain cooldown counts from it, in simulated time too."""


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
    window_end: datetime,
    now: datetime,
) -> Signals:
    """Everything the retrain decision needs for ``partition`` (the period whose training
    window ends at ``window_end``), read without loading data: its drift verdict and estimate
    and the live metric (of the newest labels-complete period, see ``labelled_partition``) if
    monitoring saw them after the last training, the new labelled records up to its end, and
    the drift the last training acted on (``RetrainPolicy`` decides whether it is new)."""
    name = pipeline.name
    versions = registry.list_versions(name)
    trained = versions[-1] if versions else None
    run = instance.get_run_by_id(trained.run_id) if trained and trained.run_id else None
    # event order is wall-clock (materializations and versions are stamped by the machine)
    after = trained.created_at if trained else None
    drift_values = period_metadata(
        instance, dg.AssetKey([name, "drift_report"]), partition, after=after
    )
    acted_on = run.tags.get(DRIFTED_TAG, "") if run else ""
    scored = labelled_partition(pipeline, partition, now)
    live = (
        period_metadata(instance, dg.AssetKey([name, "champion_performance"]), scored, after=after)
        if scored is not None
        else {}
    )
    if live.get("labels_complete") is False:  # scored before its labels were all in
        live = {}
    estimated = period_metadata(
        instance, dg.AssetKey([name, "estimated_performance"]), partition, after=after
    )
    # the estimate stands in for the labels that have not arrived: once they have, the live
    # metric speaks and the estimate is no reason of its own
    pending = _number(estimated.get("realized")) is None
    # only records whose labels have arrived count as new labelled records
    labels_until = min(window_end, label_cutoff(now, pipeline.settings.label_delay_duration))
    return Signals(
        has_champion=registry.get_alias(name, CHAMPION) is not None,
        # the configured dataset verdict (RETRAIN_DRIFT_VERDICT); reports before it: the rule
        drift_detected=drift_values.get("drift_alarm", drift_values.get("drift_detected")),
        drifted_features=tuple(
            drift_values.get("drift_alarm_features", drift_values.get("drifted_features")) or ()
        ),
        drift_acted_on=tuple(feature for feature in acted_on.split(",") if feature),
        new_records=source.count_since(registry.get_watermark(name), labels_until),
        live_metric=_number(live.get("live_metric")),
        estimated_metric=_number(estimated.get("estimated_metric")) if pending else None,
        baseline_metric=_number(live.get("baseline_metric")),
        higher_is_better=pipeline.higher_is_better,
        last_training=trained_at(run, trained.created_at) if trained else None,
        now=now,
    )


def labelled_partition(pipeline: Pipeline, partition: str, now: datetime) -> str | None:
    """The partition whose live metric speaks for ``partition`` at ``now``: itself without a
    label delay; with one, the newest period whose labels have all arrived by ``now``
    (``core.labels``), never a later one than ``partition``; None while no period's have."""
    delay = pipeline.settings.label_delay_duration
    if delay is None:
        return partition
    scales = pipeline.timescales
    start = labels_complete_period(scales, now, delay, pipeline.data_start)
    # partition keys of one period length sort as their periods do
    return None if start is None else min(scales.label(start), partition)


def request_tags(decision: RetrainDecision, signals: Signals, now: datetime) -> dict[str, str]:
    """The tags of a requested retraining run: every reason, the moment it was asked for,
    and the features whose drift it acts on."""
    drifted = ",".join(signals.drifted_features) if Cause.DRIFT in decision.causes else ""
    return {**decision.tags(), REQUESTED_AT: now.isoformat(), DRIFTED_TAG: drifted}


def trained_at(run: dg.DagsterRun | None, created: datetime) -> datetime:
    """When the run that trained a version was asked for, by the requester's clock (the
    cooldown's start); the version's creation time for a run nobody stamped (launched by hand)."""
    stamped = run.tags.get(REQUESTED_AT) if run else None
    return datetime.fromisoformat(stamped) if stamped else created


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
