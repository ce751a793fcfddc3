"""The one place a pipeline's Dagster graph is assembled from its configuration."""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.utils import is_valid_owner

from retraining_assets.core.pipeline import Pipeline
from retraining_assets.defs.assets.backtest import build_backtest_assets
from retraining_assets.defs.assets.data import build_data_assets
from retraining_assets.defs.assets.estimation import build_estimation_assets
from retraining_assets.defs.assets.monitoring import build_monitoring_assets
from retraining_assets.defs.assets.promotion import build_promotion_assets
from retraining_assets.defs.assets.rollout import build_rollout_assets
from retraining_assets.defs.assets.training import build_training_assets
from retraining_assets.defs.jobs import build_jobs
from retraining_assets.defs.operations import build_champion_sensor, build_model_jobs
from retraining_assets.defs.periods import partitions_for
from retraining_assets.defs.rollout_sensor import build_rollout_sensor
from retraining_assets.defs.schedules import build_schedules
from retraining_assets.defs.sensors import build_retraining_sensor


def asset_owners(pipeline: Pipeline) -> list[str]:
    """Who owns the pipeline's assets: RETRAIN_ASSET_OWNERS, else its administrators."""
    settings = pipeline.settings
    owners = settings.asset_owners or settings.notify_to
    variable = "RETRAIN_ASSET_OWNERS" if settings.asset_owners else "RETRAIN_NOTIFY_TO"
    for owner in owners:
        if not is_valid_owner(owner):
            raise ValueError(
                f"{variable}: {owner!r} cannot own an asset; give an e-mail address or team:<name>"
            )
    return list(owners)


def build_pipeline_defs(pipeline: Pipeline) -> dg.Definitions:
    """Assets, checks and jobs of one pipeline, keys prefixed by its name, each
    asset in the group of its stage (``<pipeline>_data``, ``_monitoring``, ``_training``,
    ``_promotion``, ``_serving``) and owned by the pipeline's owners. The resources are shared
    by every pipeline (``definitions.build_definitions``): one key per kind."""
    partitions_def = partitions_for(pipeline)
    jobs = build_jobs(pipeline.name, pipeline.settings)
    owners = asset_owners(pipeline)
    defs = dg.Definitions(
        assets=[
            *build_data_assets(pipeline, partitions_def),
            *build_monitoring_assets(pipeline, partitions_def),
            *build_estimation_assets(pipeline, partitions_def),
            *build_training_assets(pipeline, partitions_def),
            *build_promotion_assets(pipeline, partitions_def),
            *build_rollout_assets(pipeline),
            *build_backtest_assets(pipeline),
        ],
        jobs=[*jobs, *build_model_jobs(pipeline)],
        schedules=build_schedules(pipeline, jobs),
        sensors=[
            build_retraining_sensor(pipeline),
            build_rollout_sensor(pipeline),
            build_champion_sensor(pipeline),
        ],
    )
    if not owners:
        return defs
    return defs.map_asset_specs(func=lambda spec: spec.replace_attributes(owners=owners))
