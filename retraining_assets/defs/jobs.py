"""Jobs of one pipeline."""

from __future__ import annotations

import dagster as dg


def monitoring_job_name(pipeline_name: str) -> str:
    return f"{pipeline_name}_monitoring_job"


def reference_job_name(pipeline_name: str) -> str:
    return f"{pipeline_name}_reference_job"


def job_names(pipeline_name: str) -> list[str]:
    """Every job of a pipeline: the run-failure notification watches these."""
    return [reference_job_name(pipeline_name), monitoring_job_name(pipeline_name)]


def build_jobs(
    pipeline_name: str, partitions_def: dg.PartitionsDefinition
) -> list[dg.UnresolvedAssetJobDefinition]:
    return [
        dg.define_asset_job(
            reference_job_name(pipeline_name),
            selection=dg.AssetSelection.assets([pipeline_name, "reference_data"]),
            description="Refresh the reference the periods are validated and compared against.",
        ),
        dg.define_asset_job(
            monitoring_job_name(pipeline_name),
            selection=dg.AssetSelection.assets(
                [pipeline_name, "current_data"], [pipeline_name, "drift_report"]
            ),
            partitions_def=partitions_def,
            description="Load and validate one period and compare it with the reference.",
        ),
    ]
