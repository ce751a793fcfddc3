"""The backtest in the graph: the pipeline's own labelled history replayed through its own
retraining and promotion policies, on demand (no schedule or sensor materializes it)."""

import dagster as dg
from pydantic import Field

from retraining_assets.core.backtest import (
    DEFAULT_FAMILIES,
    POLICIES,
    BacktestError,
    BacktestResult,
    Progress,
    replay_history,
)
from retraining_assets.core.locations import Location
from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.reports import published
from retraining_assets.defs.plots import inline_image
from retraining_assets.defs.resources import RecordsResource

# "always" retrains every period: a baseline worth its cost only when asked for
DEFAULT_POLICIES = ["auto", "monthly", "static"]


class BacktestConfig(dg.Config):
    """What to replay; everything else (periods, windows, thresholds, the gate) is the
    pipeline's own settings."""

    policies: list[str] = Field(
        default=DEFAULT_POLICIES,
        description=f"Policies to compare, from {list(POLICIES)}: auto (every trigger and the "
        "gate), monthly (the monthly schedule alone), static (train once), always (retrain "
        "and promote every period).",
    )
    families: list[str] = Field(
        default_factory=list,
        description="Model families to train. Default: one, xgboost if the pipeline trains "
        "it, else its first family, to keep the replay quick.",
    )


def backtests_folder(pipeline: Pipeline, run_id: str) -> Location:
    """Where one run's plot and JSON go (under the artifact root's reports): every
    materialization keeps its own files, so an older entry's links still open what it
    measured."""
    return pipeline.reports_folder("backtests", run_id)


def replay_families(pipeline: Pipeline, asked: list[str]) -> list[str]:
    """The families to train: those asked for (each one the pipeline trains), else one."""
    trained = list(pipeline.settings.model_families)
    unknown = [family for family in asked if family not in trained]
    if unknown:
        raise BacktestError(
            f"families: {unknown} are not trained by this pipeline "
            f"(RETRAIN_MODEL_FAMILIES: {trained})"
        )
    if asked:
        return asked
    return [family for family in DEFAULT_FAMILIES if family in trained] or trained[:1]


def summary_markdown(result: BacktestResult) -> str:
    """One row per policy; short enough for the UI to render inline."""
    lines = [
        f"| policy | mean {result.metric} | retrains | promotions |",
        "|---|---:|---:|---:|",
    ]
    for name, policy in result.policies.items():
        mean = policy.mean_metric
        shown = "n/a" if mean is None else f"{mean:.4f}"
        lines.append(f"| {name} | {shown} | {policy.retrains} | {policy.promotions} |")
    return "\n".join(lines)


def backtest_metadata(
    result: BacktestResult, png_url: str, json_url: str
) -> dict[str, dg.MetadataValue]:
    metadata: dict[str, dg.MetadataValue] = {
        "summary": dg.MetadataValue.md(summary_markdown(result)),
        "plot_preview": inline_image("backtest", png_url),
        "plot": dg.MetadataValue.url(png_url),
        "result_json": dg.MetadataValue.url(json_url),
        "metric": dg.MetadataValue.text(result.metric),
        "periods": dg.MetadataValue.int(result.periods),
        "families": dg.MetadataValue.text(", ".join(result.families)),
        "time_scales": dg.MetadataValue.json(result.settings),
        "seconds": dg.MetadataValue.float(round(result.seconds, 1)),
    }
    for name, policy in result.policies.items():  # numeric: the UI plots them over runs
        if policy.mean_metric is not None:
            metadata[f"mean_{result.metric}_{name}"] = dg.MetadataValue.float(policy.mean_metric)
    if result.notes:
        metadata["notes"] = dg.MetadataValue.md("\n".join(f"- {n}" for n in result.notes))
    return metadata


def build_backtest_assets(pipeline: Pipeline) -> list[dg.AssetsDefinition]:
    name = pipeline.name

    @dg.asset(
        key=[name, "backtest_report"],
        group_name=f"{name}_training",
        kinds={"python"},
    )
    def backtest_report(
        context: dg.AssetExecutionContext, config: BacktestConfig, records: RecordsResource
    ) -> dg.MaterializeResult:
        """Would the pipeline's policies have paid off on its own records? Every labelled
        record replayed period by period (`retrain backtest`'s engine) with this pipeline's
        periods, drift and training windows, schedule, triggers and promotion gate: each
        period scored by the serving model before its labels are used, then each policy
        decides. The plot and the JSON open from the metadata. On demand only: materialize
        it, or launch `<pipeline>_backtest_job`."""
        try:
            families = replay_families(pipeline, config.families)
            frame = records.source(name).load()
            result = replay_history(
                frame, pipeline.spec, pipeline.timescales, settings=pipeline.settings,
                families=families, policies=config.policies, progress=_logger(context),
            )  # fmt: skip
        except BacktestError as error:
            raise dg.Failure(description=f"{name}/backtest_report: {error}") from None
        folder = backtests_folder(pipeline, context.run_id)
        with published(folder) as scratch:
            result.plot(scratch / "backtest.png")
            (scratch / "backtest.json").write_text(result.to_json())
        plot, data = folder / "backtest.png", folder / "backtest.json"
        context.log.info(f"{result.periods} periods replayed in {result.seconds:.0f} s")
        return dg.MaterializeResult(
            metadata=backtest_metadata(result, pipeline.report_url(plot), pipeline.report_url(data))
        )

    return [backtest_report]


def _logger(context: dg.AssetExecutionContext) -> Progress:
    """Progress in the run's log, about ten lines for any number of periods."""

    def progress(done: int, total: int, message: str) -> None:
        if done == 1 or done == total or done % max(1, total // 10) == 0:
            context.log.info(f"{done}/{total}: {message}")

    return progress
