"""The rollout in the graph: the live experiment, and the traffic split that acts on it."""

from collections.abc import Iterator

import dagster as dg

from retraining_assets.core.locations import Location
from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.registry import CHAMPION
from retraining_assets.core.reports import published
from retraining_assets.core.rollout import Action, describe, transitions
from retraining_assets.core.rollout.experiment import Experiment, measure
from retraining_assets.core.rollout.transitions import PROMOTED, RolloutConflictError
from retraining_assets.defs.identity import actor_of
from retraining_assets.defs.materializations import champion_materializations, traffic_metadata
from retraining_assets.defs.notifications import NotifierResource
from retraining_assets.defs.plots import inline_image
from retraining_assets.defs.resources import PlatformResource


def rollouts_folder(pipeline: Pipeline) -> Location:
    """Where the experiment plots go (under the artifact root's reports)."""
    return pipeline.reports_folder("rollouts")


def experiment_metadata(experiment: Experiment, plot_url: str) -> dict[str, dg.MetadataValue]:
    rollout, decision = experiment.rollout, experiment.decision
    return {
        "decision": dg.MetadataValue.text(str(decision.action)),
        "reason": dg.MetadataValue.text(decision.reason),
        "rollout_id": dg.MetadataValue.int(rollout.id),
        "step": dg.MetadataValue.text(f"{rollout.step + 1}/{len(rollout.plan.steps)}"),
        "share": dg.MetadataValue.float(rollout.share),
        "challenger_version": dg.MetadataValue.int(rollout.challenger_version),
        "champion_version": dg.MetadataValue.int(rollout.champion_version),
        "elapsed_hours": dg.MetadataValue.float(round(decision.elapsed_hours, 3)),
        "variants": dg.MetadataValue.md(experiment.to_markdown()),
        "srm_p_value": dg.MetadataValue.float(decision.srm.p_value),
        "plot_preview": inline_image("rollout", plot_url),
        "plot": dg.MetadataValue.url(plot_url),
        "comparison": dg.MetadataValue.text(describe(decision.comparison)),
    }


def build_rollout_assets(pipeline: Pipeline) -> list[dg.AssetsDefinition]:
    name, task = pipeline.name, pipeline.spec.task
    results_key = dg.AssetKey([name, "ab_test_results"])
    split_key = dg.AssetKey([name, "traffic_split"])

    @dg.asset(
        key=results_key,
        group_name=f"{name}_serving",
        output_required=False,
        kinds={"python"},
    )
    def ab_test_results(
        context: dg.AssetExecutionContext, platform: PlatformResource
    ) -> Iterator[dg.Output[Experiment]]:
        """The live experiment: per-variant outcomes of the active rollout since its current
        step began, the primary-metric comparison (mSPRT or z/Welch), the SRM check, and the
        decision."""
        registry = platform.registry()
        active = transitions.active_rollout(registry, name)
        if active is None:
            context.log.info(f"no active rollout of '{name}': nothing to measure")
            return
        experiment = measure(registry.engine, active, task)
        name_png = f"rollout-{active.id}-step-{active.step + 1}.png"
        with published(rollouts_folder(pipeline)) as scratch:
            experiment.plot(scratch / name_png)
        plot = rollouts_folder(pipeline) / name_png
        context.log.info(
            f"rollout {active.id}: {experiment.decision.action} ({experiment.decision.reason})"
        )
        yield dg.Output(
            experiment, metadata=experiment_metadata(experiment, pipeline.report_url(plot))
        )

    @dg.asset(
        key=split_key,
        group_name=f"{name}_serving",
        ins={"ab_test_results": dg.AssetIn(results_key)},
        output_required=False,
        kinds={"python"},
    )
    def traffic_split(
        context: dg.AssetExecutionContext,
        platform: PlatformResource,
        notifier: NotifierResource,
        ab_test_results: Experiment,
    ) -> Iterator[dg.Output[float] | dg.AssetMaterialization]:
        """The challenger's live share, changed only through the audited rollout transactions:
        the next step, promotion (the challenger becomes the champion), or all traffic back to
        the champion on a rollback or halt. Skipped while the decision is to continue."""
        decision = ab_test_results.decision
        if decision.action is Action.CONTINUE:
            context.log.info(f"traffic unchanged: {decision.reason}")
            return
        registry = platform.registry()
        try:
            changed = transitions.carry_out(
                registry,
                notifier.notifier(),
                ab_test_results.rollout,
                decision,
                actor=actor_of(context),
            )
        except RolloutConflictError as error:
            # the rollout moved since it was measured (a person, or a racing run): the
            # decision is stale and the next evaluation judges the rollout as it is now
            context.log.warning(f"stale decision not applied ({decision.action}): {error}")
            return
        if changed is None:  # only a decision to continue changes nothing
            return
        context.log.info(
            f"rollout {changed.id}: {decision.action}, challenger share {changed.share:.1%}"
        )
        if changed.status == PROMOTED:
            move = registry.alias_history(name, CHAMPION)[-1]
            yield from champion_materializations(
                name, registry, platform.references(), move, "rollout"
            )
        metadata = traffic_metadata(changed, decision.reason, "rollout job")
        yield dg.Output(changed.share, metadata=metadata)

    return [ab_test_results, traffic_split]
