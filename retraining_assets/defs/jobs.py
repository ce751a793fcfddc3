"""Jobs of one pipeline."""

from __future__ import annotations

import dagster as dg

from retraining_assets.core.lifecycle import CHANGES, change_job_name
from retraining_assets.defs.executors import executor_def
from retraining_assets.settings import Settings


def monitoring_job_name(pipeline_name: str) -> str:
    return f"{pipeline_name}_monitoring_job"


def reference_job_name(pipeline_name: str) -> str:
    return f"{pipeline_name}_reference_job"


def retraining_job_name(pipeline_name: str) -> str:
    return f"{pipeline_name}_retraining_job"


def rollout_job_name(pipeline_name: str) -> str:
    return f"{pipeline_name}_rollout_job"


def backtest_job_name(pipeline_name: str) -> str:
    return f"{pipeline_name}_backtest_job"


def job_names(pipeline_name: str) -> list[str]:
    """The jobs that keep a pipeline's model fresh (automation and operators): the
    run-failure notification watches these. The on-demand backtest is not among them: the
    person who launched it sees its failure."""
    return [
        reference_job_name(pipeline_name),
        monitoring_job_name(pipeline_name),
        retraining_job_name(pipeline_name),
        rollout_job_name(pipeline_name),
        *(change_job_name(pipeline_name, action) for action in CHANGES),
    ]


def build_jobs(pipeline_name: str, settings: Settings) -> list:
    """The pipeline's jobs; the retraining job runs on the executor RETRAIN_EXECUTOR names
    (defs/executors.py), the others on Dagster's default."""
    return [
        dg.define_asset_job(
            reference_job_name(pipeline_name),
            selection=dg.AssetSelection.assets([pipeline_name, "reference_data"]),
            description="Refresh the reference the periods are validated and compared against.",
        ),
        dg.define_asset_job(
            monitoring_job_name(pipeline_name),
            selection=monitoring_selection(pipeline_name),
            description="Load and validate one period, compare it with the reference and "
            "score the champion on it.",
        ),
        dg.define_asset_job(
            retraining_job_name(pipeline_name),
            selection=retraining_selection(pipeline_name),
            description="Train candidates on the period's window, evaluate them against the "
            "champion, and promote one only if the promotion gate passes.",
            # one retraining at a time per pipeline (QueuedRunCoordinator tag limits)
            tags={RETRAINING_TAG: pipeline_name},
            executor_def=executor_def(settings),
        ),
        dg.define_asset_job(
            rollout_job_name(pipeline_name),
            selection=rollout_selection(pipeline_name),
            description="Measure the active rollout's experiment and carry out the decision: "
            "next step, promotion, rollback or halt.",
        ),
        dg.define_asset_job(
            backtest_job_name(pipeline_name),
            selection=backtest_selection(pipeline_name),
            description="Replay the pipeline's labelled history through its retraining "
            "policies and promotion gate (on demand: no schedule or sensor launches it).",
        ),
    ]


RETRAINING_TAG = "retraining_assets/retraining"


def monitoring_selection(pipeline_name: str) -> dg.AssetSelection:
    """What each new period needs as soon as it is complete."""
    return dg.AssetSelection.assets(
        *(
            [pipeline_name, key]
            for key in (
                "current_data",
                "drift_report",
                "champion_performance",
                "estimated_performance",
            )
        )
    )


def rollout_selection(pipeline_name: str) -> dg.AssetSelection:
    """The live experiment and the traffic split that acts on it."""
    return dg.AssetSelection.assets(
        *([pipeline_name, key] for key in ("ab_test_results", "traffic_split"))
    )


def backtest_selection(pipeline_name: str) -> dg.AssetSelection:
    """The on-demand replay of the pipeline's history."""
    return dg.AssetSelection.assets([pipeline_name, "backtest_report"])


def retraining_selection(pipeline_name: str) -> dg.AssetSelection:
    """From the training window to the champion and the reference it brings along."""
    return (
        dg.AssetSelection.key_prefixes([pipeline_name])
        - monitoring_selection(pipeline_name)
        - rollout_selection(pipeline_name)
        - backtest_selection(pipeline_name)
    )
