"""The one place a pipeline's Dagster graph is assembled from its configuration."""

from __future__ import annotations

import dagster as dg

from retraining_assets.core.pipeline import Pipeline
from retraining_assets.defs.assets.data import build_data_assets
from retraining_assets.defs.assets.monitoring import build_monitoring_assets
from retraining_assets.defs.assets.promotion import build_promotion_assets
from retraining_assets.defs.assets.rollout import build_rollout_assets
from retraining_assets.defs.assets.training import build_training_assets
from retraining_assets.defs.jobs import build_jobs
from retraining_assets.defs.operations import build_model_jobs
from retraining_assets.defs.periods import partitions_for
from retraining_assets.defs.resources import RecordSourceResource
from retraining_assets.defs.rollout_sensor import build_rollout_sensor
from retraining_assets.defs.schedules import build_schedules
from retraining_assets.defs.sensors import build_retraining_sensor


def build_pipeline_defs(pipeline: Pipeline) -> dg.Definitions:
    """Assets, checks, jobs and resources of one pipeline, keys prefixed by its name."""
    partitions_def = partitions_for(pipeline)
    jobs = build_jobs(pipeline.name)
    return dg.Definitions(
        assets=[
            *build_data_assets(pipeline, partitions_def),
            *build_monitoring_assets(pipeline, partitions_def),
            *build_training_assets(pipeline, partitions_def),
            *build_promotion_assets(pipeline, partitions_def),
            *build_rollout_assets(pipeline),
        ],
        jobs=[*jobs, *build_model_jobs(pipeline)],
        schedules=build_schedules(pipeline, jobs),
        sensors=[build_retraining_sensor(pipeline), build_rollout_sensor(pipeline)],
        resources={f"{pipeline.name}_records": RecordSourceResource.of(pipeline.source)},
    )
