"""The retraining sensor: gathers the signals cheaply and lets ``RetrainPolicy`` decide."""

from datetime import UTC, datetime

import dagster as dg

from retraining_assets.core.pipeline import Pipeline, retrain_policy
from retraining_assets.defs.jobs import retraining_job_name
from retraining_assets.defs.resources import PLATFORM
from retraining_assets.defs.signals import gather_signals

ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def automation_status(pipeline: Pipeline) -> dg.DefaultSensorStatus:
    running = pipeline.settings.automation_running
    return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED


def build_retraining_sensor(
    pipeline: Pipeline, partitions_def: dg.TimeWindowPartitionsDefinition
) -> dg.SensorDefinition:
    name = pipeline.name
    job_name = retraining_job_name(name)
    records = f"{name}_records"
    policy = retrain_policy(pipeline.settings)

    @dg.sensor(
        name=f"{name}_retraining_sensor",
        job_name=job_name,
        minimum_interval_seconds=60,
        default_status=automation_status(pipeline),
        required_resource_keys={PLATFORM, records},
        description="Retrains on the newest complete period when RetrainPolicy says so: no "
        "champion, drift, more new records than RETRAIN_VOLUME_TRIGGER, or a live metric drop. "
        "Reads metadata and a COUNT only; every reason goes into the run's tags.",
    )
    def retraining_sensor(context: dg.SensorEvaluationContext):
        # the newest period that monitoring has seen (the monitoring schedule or a backfill)
        reports = context.instance.fetch_materializations(
            dg.AssetKey([name, "drift_report"]), limit=1
        ).records
        if not reports:
            return dg.SkipReason("no period has been monitored yet")
        partition = reports[0].partition_key
        start = partitions_def.time_window_for_partition_key(partition).start
        if not pipeline.can_train(start.replace(tzinfo=None)):
            return dg.SkipReason(f"{partition}: the training window is not complete yet")
        active = context.instance.get_run_records(
            dg.RunsFilter(job_name=job_name, statuses=ACTIVE), limit=1
        )
        if active:
            return dg.SkipReason(
                f"a retraining run is already in progress ({active[0].dagster_run.run_id})"
            )
        registry = getattr(context.resources, PLATFORM).registry()
        source = getattr(context.resources, records).source()
        signals = gather_signals(
            context.instance,
            pipeline,
            registry,
            source,
            partition,
            now=datetime.now(UTC).replace(tzinfo=None),
        )
        decision = policy.decide(signals)
        if not decision.retrain:
            return dg.SkipReason(f"{partition}: {decision.summary()}")
        watermark = registry.get_watermark(name)
        return dg.RunRequest(
            # a new key only when new data was trained on since: repeated ticks dedupe
            run_key=f"{partition}:{watermark.isoformat() if watermark else 'never'}",
            partition_key=partition,
            tags=decision.tags(),
        )

    return retraining_sensor
