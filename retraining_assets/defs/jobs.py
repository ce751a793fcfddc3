"""Jobs of one pipeline."""

from __future__ import annotations

import dagster as dg


def monitoring_job_name(pipeline_name: str) -> str:
    return f"{pipeline_name}_monitoring_job"


def reference_job_name(pipeline_name: str) -> str:
    return f"{pipeline_name}_reference_job"


def retraining_job_name(pipeline_name: str) -> str:
    return f"{pipeline_name}_retraining_job"


def job_names(pipeline_name: str) -> list[str]:
    """Every job of a pipeline: the run-failure notification watches these."""
    return [
        reference_job_name(pipeline_name),
        monitoring_job_name(pipeline_name),
        retraining_job_name(pipeline_name),
    ]


def build_jobs(pipeline_name: str) -> list[dg.UnresolvedAssetJobDefinition]:
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
            description="Load and validate one period and compare it with the reference.",
        ),
        dg.define_asset_job(
            retraining_job_name(pipeline_name),
            selection=retraining_selection(pipeline_name),
            description="Train candidates on the period's window, evaluate them against the "
            "champion, and promote one only if the promotion gate passes.",
            # one retraining at a time per pipeline (QueuedRunCoordinator tag limits)
            tags={RETRAINING_TAG: pipeline_name},
        ),
    ]


RETRAINING_TAG = "retraining_assets/retraining"


def retraining_selection(pipeline_name: str) -> dg.AssetSelection:
    """From the training window to the champion and the reference it brings along."""
    group = dg.AssetSelection.groups(pipeline_name)
    monitoring = dg.AssetSelection.assets(
        [pipeline_name, "current_data"], [pipeline_name, "drift_report"]
    )
    return group - monitoring
