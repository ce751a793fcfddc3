"""The retraining sensor: gathers the signals cheaply and lets ``RetrainPolicy`` decide."""

import dagster as dg

from retraining_assets.core.pipeline import Pipeline, retrain_policy
from retraining_assets.defs.jobs import retraining_job_name
from retraining_assets.defs.periods import retraining_target
from retraining_assets.defs.resources import ClockResource, PlatformResource, RecordsResource
from retraining_assets.defs.signals import gather_signals, request_tags

ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def automation_status(pipeline: Pipeline) -> dg.DefaultSensorStatus:
    running = pipeline.settings.automation_running
    return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED


def build_retraining_sensor(pipeline: Pipeline) -> dg.SensorDefinition:
    name = pipeline.name
    job_name = retraining_job_name(name)
    policy = retrain_policy(pipeline.settings)
    scales = pipeline.timescales

    @dg.sensor(
        name=f"{name}_retraining_sensor",
        job_name=job_name,
        minimum_interval_seconds=60,
        default_status=automation_status(pipeline),
        description="Every minute, asks RetrainPolicy whether to retrain on the newest complete "
        "monitoring period: no champion, drift or an estimated drop in that period's "
        "monitoring, a live-metric drop in the newest period whose labels are all in "
        "(that period itself without RETRAIN_LABEL_DELAY), or more than "
        "RETRAIN_VOLUME_TRIGGER new labelled records in its training window. "
        "Reads metadata and a COUNT only; every reason goes into the run's tags.",
    )
    def retraining_sensor(
        context: dg.SensorEvaluationContext,
        platform: PlatformResource,
        clock: ClockResource,
        records: RecordsResource,
    ) -> dg.RunRequest | dg.SkipReason:
        now = clock.now()
        # the newest complete period, whatever was monitored last: a backfill of an old
        # period does not move the target, and the window holds every record up to its end
        target = retraining_target(pipeline, now)
        if isinstance(target, dg.SkipReason):
            return target
        partition = scales.label(target)
        active = context.instance.get_run_records(
            dg.RunsFilter(job_name=job_name, statuses=ACTIVE), limit=1
        )
        if active:
            return dg.SkipReason(
                f"a retraining run is already in progress ({active[0].dagster_run.run_id})"
            )
        registry = platform.registry()
        source = records.source(name)
        signals = gather_signals(
            context.instance,
            pipeline,
            registry,
            source,
            partition,
            window_end=scales.period_end(target),
            now=now,
        )
        decision = policy.decide(signals)
        if not decision.retrain:
            return dg.SkipReason(f"{partition}: {decision.summary()}")
        watermark = registry.get_watermark(name)
        return dg.RunRequest(
            # a new key only when new data was trained on since: repeated ticks dedupe
            run_key=f"{partition}:{watermark.isoformat() if watermark else 'never'}",
            partition_key=partition,
            tags=request_tags(decision, signals, now),
        )

    return retraining_sensor
