"""The promotion gate in the graph: evaluation with its check, and the champion it protects."""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from retraining_assets.core.candidates import TrainingWindow, load_model
from retraining_assets.core.importance import record_importance
from retraining_assets.core.lifecycle import (
    Judgement,
    RolloutActiveError,
    change_champion,
    decision_of_run,
    how_to_decide,
    judge,
    record_judgement,
)
from retraining_assets.core.notify import Notifier, retraining_completed
from retraining_assets.core.pipeline import Pipeline, promotion_policy, rollout_plan, rolls_out
from retraining_assets.core.promotion import Verdict
from retraining_assets.core.registry import CHAMPION, Registry
from retraining_assets.core.revalidation import revalidate
from retraining_assets.core.rollout import transitions
from retraining_assets.core.rollout.transitions import RolloutError
from retraining_assets.core.training import BASE_FAMILIES
from retraining_assets.defs.assets.training import candidate_key
from retraining_assets.defs.checks import partitioned_check_spec
from retraining_assets.defs.identity import actor_of, run_id
from retraining_assets.defs.materializations import (
    champion_metadata,
    reference_materialization,
    traffic_materialization,
)
from retraining_assets.defs.notifications import NotifierResource
from retraining_assets.defs.resources import PlatformResource

GATE = "promotion_threshold"


def gate_description(min_lift: float) -> str:
    """What the check means, and exactly what moves the champion: the UI's description."""
    return (
        "Passes exactly when the promotion policy says PROMOTE: the best candidate beats the "
        f"champion by at least {min_lift:.0%} on the shared holdout with a paired bootstrap "
        "interval above 0 (a first model: it beats the trivial baseline). `champion_model` "
        "moves the registry's champion alias only in a run in which this check passed; "
        "otherwise it is skipped and the champion stays. A failing result is a decision "
        "(rejected, or pending a person's approval), so it warns and does not fail the run."
    )


def gate_passed(context: dg.AssetExecutionContext, asset: dg.AssetKey) -> bool:
    """Whether the promotion check on ``asset`` passed in this run: the check is what lets the
    champion move, not a second reading of the numbers."""
    records = context.instance.get_records_for_run(
        run_id(context), of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    evaluations = [record.event_log_entry.dagster_event.event_specific_data for record in records]
    return any(e.check_name == GATE and e.asset_key == asset and e.passed for e in evaluations)


def judgement_metadata(pipeline: str, judgement: Judgement) -> dict[str, dg.MetadataValue]:
    decision, evidence = judgement.decision, judgement.decision.evidence
    metadata = {
        "decision": dg.MetadataValue.text(decision.verdict.value),
        "reason": dg.MetadataValue.text(decision.reason),
        "best_candidate": dg.MetadataValue.text(judgement.comparison.best_candidate),
        "candidate_version": dg.MetadataValue.int(judgement.candidate_version),
        "primary_metric": dg.MetadataValue.text(evidence.metric),
        "lift": dg.MetadataValue.text("-" if evidence.lift is None else f"{evidence.lift:+.2%}"),
        "candidate_value": _number(evidence.candidate),
        "champion_value": _number(evidence.champion),
        "comparison": dg.MetadataValue.md(judgement.comparison.to_markdown()),
        "versions": dg.MetadataValue.json(judgement.versions),
    }
    if decision.verdict is Verdict.PENDING:  # a person decides: say how, as the message does
        how = how_to_decide(pipeline, judgement.candidate_version)
        for action in ("approve", "reject"):
            metadata[f"to_{action}"] = dg.MetadataValue.md(
                f"`{how[f'{action}_cli']}`\n\nor launch `{how[f'{action}_job']}`"
            )
    return metadata


def _number(value: float | None) -> dg.MetadataValue:
    return dg.MetadataValue.text("-") if value is None else dg.MetadataValue.float(value)


def build_promotion_assets(
    pipeline: Pipeline, partitions_def: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    name, spec, settings = pipeline.name, pipeline.spec, pipeline.settings
    evaluation_key = dg.AssetKey([name, "model_evaluation"])
    champion_key = dg.AssetKey([name, "champion_model"])
    families = [f for f in (*BASE_FAMILIES, "ensemble") if f in settings.model_families]
    policy = promotion_policy(settings)

    @dg.asset(
        key=evaluation_key,
        group_name=f"{name}_promotion",
        partitions_def=partitions_def,
        ins={
            "training_data": dg.AssetIn([name, "training_data"]),
            **{family: dg.AssetIn(candidate_key(pipeline, family)) for family in families},
        },
        check_specs=[
            partitioned_check_spec(
                GATE,
                evaluation_key,
                partitions_def,
                # not Dagster-blocking: a blocking check that fails fails its run, and a
                # rejected candidate is a decision, not an error. champion_model reads this
                # result instead (gate_passed), so the check is still the one gate.
                blocking=False,
                description=gate_description(settings.promotion_min_lift),
            )
        ],
        kinds={"scikitlearn"},
    )
    def model_evaluation(
        context: dg.AssetExecutionContext,
        platform: PlatformResource,
        notifier: NotifierResource,
        training_data: TrainingWindow,
        **candidates: int,
    ) -> Iterator[dg.Output | dg.AssetCheckResult | dg.AssetMaterialization]:
        """Every candidate and the current champion scored on the same holdout (the most
        recent records of the window): ROC AUC, log loss, accuracy, F1, Brier (or RMSE, MAE,
        R²), the lift of the best candidate over the champion with a paired bootstrap interval
        and McNemar's test, and the promotion decision. A pending decision asks a person: the
        metadata (`to_approve`, `to_reject`) and the administrators' message give the CLI
        line and the Dagster job that decide it. With `RETRAIN_DRIFT_REFERENCE=validated`, a
        judgement that keeps the champion moves the drift reference to this window."""
        registry, messages, run = platform.registry(), notifier.notifier(), run_id(context)
        models = {f: (v, load_model(registry, name, v)) for f, v in candidates.items()}
        current = registry.get_alias(name, CHAMPION)
        champion = (
            (current.version, load_model(registry, name, current.version)) if current else None
        )
        judgement = judge(
            models, champion, training_data.split, spec, policy, settings.primary_metric
        )
        # the one version this run can make champion: the weighted verdict reads its importance
        best_version, best_model = models[judgement.comparison.best_candidate]
        record_importance(
            registry, name, best_version, best_model, training_data.split.holdout, spec,
            judgement.comparison.primary_metric,
        )  # fmt: skip
        record_judgement(
            registry, messages, name, judgement,
            partition=context.partition_key, run_id=run,
            actor=actor_of(context), min_lift=settings.promotion_min_lift,
        )  # fmt: skip
        revalidated = revalidate(
            pipeline, registry, platform.references(), judgement,
            champion[1] if champion else None, training_data,
        )  # fmt: skip
        if revalidated is not None:
            context.log.info(f"drift is measured from now on against {revalidated.origin}")
        scores = judgement.comparison.scores
        messages.notify(
            retraining_completed(
                pipeline=name,
                metrics={
                    model: {
                        judgement.comparison.primary_metric: values[
                            judgement.comparison.primary_metric
                        ]
                    }
                    for model, values in scores.items()
                },
                best=judgement.comparison.best_candidate,
                reasons=[judgement.decision.reason],
                partition=context.partition_key,
                run_id=run,
                key=f"completed:{name}:{run}",
            )
        )
        context.log.info(
            f"decision: {judgement.decision.verdict.value} ({judgement.decision.reason})"
        )
        yield dg.Output(judgement.to_dict(), metadata=judgement_metadata(name, judgement))
        yield dg.AssetCheckResult(
            check_name=GATE,
            passed=judgement.decision.promote,
            # WARN: a rejected or pending candidate is a decision, not a failed run
            severity=dg.AssetCheckSeverity.WARN,
            description=judgement.decision.reason,
            metadata={k: v for k, v in judgement.decision.to_dict().items() if v is not None},
        )
        if revalidated is not None:
            yield reference_materialization(name, revalidated)

    @dg.asset(
        key=champion_key,
        group_name=f"{name}_promotion",
        deps=[evaluation_key],
        output_required=False,
        kinds={"python"},
    )
    def champion_model(
        context: dg.AssetExecutionContext, platform: PlatformResource, notifier: NotifierResource
    ) -> Iterator[dg.Output[int] | dg.AssetMaterialization]:
        """The production model: the registry's "champion" alias. It moves only in a run whose
        promotion_threshold check passed, by compare-and-set on the champion the evaluation saw
        (a stale evaluation cannot overwrite a newer champion), with the administrators told
        before and after. With RETRAIN_PROMOTION_STRATEGY canary, gradual or ab, a passing
        candidate starts a rollout instead and the champion stays until the rollout promotes
        it. Otherwise this asset is skipped: the champion stays."""
        registry = platform.registry()
        decision = decision_of_run(registry, name, run_id(context))
        if decision is None or not gate_passed(context, evaluation_key):
            context.log.info(f"champion kept: {decision['reason'] if decision else 'no decision'}")
            return
        messages = notifier.notifier()
        if rolls_out(pipeline, decision["champion_version"]):
            yield from start_rollout(context, registry, messages, decision)
            return
        try:
            move = change_champion(
                registry,
                messages,
                name,
                decision["candidate_version"],
                expected_current=decision["champion_version"],
                actor=actor_of(context),
                reason=decision["reason"],
                metric=decision["metric"],
                lift=decision["lift"],
            )
        except RolloutActiveError as error:  # a rollout started by a person decides instead
            context.log.warning(f"champion kept: {error}")
            return
        champion = registry.get_version(name, move.version)
        yield dg.Output(move.version, metadata=champion_metadata(registry, champion, move))

    def start_rollout(
        context: dg.AssetExecutionContext,
        registry: Registry,
        notifier: Notifier,
        decision: dict[str, Any],
    ) -> Iterator[dg.AssetMaterialization]:
        """Roll the candidate out as challenger; the champion stays. While another rollout is
        active the candidate stays registered for an operator (``retrain rollout start``)."""
        version = decision["candidate_version"]
        try:
            started = transitions.start_rollout(
                registry,
                notifier,
                name,
                version,
                rollout_plan(pipeline),
                actor=actor_of(context),
                reason=decision["reason"],
                expected_champion=decision["champion_version"],
            )
        except RolloutError as error:  # another rollout is active, or the champion moved
            context.log.warning(
                f"champion kept, v{version} not rolled out: {error}. It stays registered; "
                f"start it later with `retrain rollout start --challenger {version}`."
            )
            return
        context.log.info(
            f"champion kept: v{version} passed the gate and starts a {started.plan.strategy} "
            f"rollout (id {started.id}) at {started.share:.1%} of the traffic"
        )
        yield traffic_materialization(started, decision["reason"], "promotion gate")

    return [model_evaluation, champion_model]
