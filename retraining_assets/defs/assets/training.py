"""Training assets: the training window ending with a period and one candidate per model
family."""

from collections.abc import Iterator

import dagster as dg

from retraining_assets.core.candidates import TrainingWindow, load_model, register_candidate
from retraining_assets.core.labels import labelled_period
from retraining_assets.core.notify import retraining_started
from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.registry import Registry
from retraining_assets.core.training import (
    BASE_FAMILIES,
    data_fingerprint,
    split_for_training,
    train_model,
)
from retraining_assets.core.training_sample import read_training_window
from retraining_assets.defs.executors import training_step_tags
from retraining_assets.defs.identity import actor_of
from retraining_assets.defs.notifications import NotifierResource
from retraining_assets.defs.periods import period_start
from retraining_assets.defs.resources import ClockResource, PlatformResource, RecordsResource

FORCE_TAG = "retrain/force"  # "true": train even on a window already trained on


def candidate_key(pipeline: Pipeline, family: str) -> dg.AssetKey:
    return dg.AssetKey([pipeline.name, f"candidate_{family}"])


def candidate_metadata(version: int, model, metrics: dict) -> dict[str, dg.MetadataValue]:
    return {
        "version": dg.MetadataValue.int(version),
        "training_seconds": dg.MetadataValue.float(round(model.training_seconds, 2)),
        "params": dg.MetadataValue.json(model.params),
        "valid_metrics": dg.MetadataValue.json(metrics),
    }


def build_training_assets(
    pipeline: Pipeline, partitions_def: dg.TimeWindowPartitionsDefinition
) -> list[dg.AssetsDefinition]:
    name, spec, settings = pipeline.name, pipeline.spec, pipeline.settings
    window_key = dg.AssetKey([name, "training_data"])
    families = settings.model_families
    base = [family for family in BASE_FAMILIES if family in families]

    @dg.asset(
        key=window_key,
        group_name=f"{name}_training",
        partitions_def=partitions_def,
        deps=[dg.AssetKey([name, "current_data"])],
        output_required=False,
        kinds={"pandas"},
    )
    def training_data(
        context: dg.AssetExecutionContext,
        platform: PlatformResource,
        notifier: NotifierResource,
        records: RecordsResource,
        clock: ClockResource,
    ) -> Iterator[dg.Output[TrainingWindow]]:
        """The records of the training window: `RETRAIN_TRAINING_WINDOW` (a duration, 90 days
        by default) ending with this period (with `RETRAIN_LABEL_DELAY`, with the newest period
        whose labels have all arrived), split by time into train, validation (early stopping)
        and the most recent tail as the holdout, never seen in training. Its drift reference
        is fitted here once."""
        scales, delay = pipeline.timescales, settings.label_delay_duration
        period = period_start(partitions_def, context.partition_key)
        last = labelled_period(scales, period, clock.now(), delay, pipeline.data_start)
        if last is None:
            raise dg.Failure(
                f"no period's labels are complete at {clock.now():%Y-%m-%d %H:%M} "
                f"(RETRAIN_LABEL_DELAY={delay}): nothing to train {context.partition_key} on"
            )
        if last != period:
            context.log.info(
                f"labels arrive {delay} late (RETRAIN_LABEL_DELAY): the training window ends "
                f"with {scales.label(last)}, the newest period whose labels are all in"
            )
        start, end = scales.training_window_of(last, pipeline.data_start)
        frame, sample = read_training_window(
            records.source(name),
            start,
            end,
            max_rows=settings.training_max_rows,
            holdout_records=settings.holdout_records or None,
        )
        registry = platform.registry()
        fingerprint = data_fingerprint(frame, spec)
        trained = [
            v.version for v in registry.list_versions(name) if v.data_fingerprint == fingerprint
        ]
        if trained and context.run.tags.get(FORCE_TAG) != "true":
            # the schedule and a trigger may both ask for the same period: train once
            context.log.info(f"already trained on exactly this window (v{trained[-1]}); skipped")
            return
        reasons = context.run.tags.get("retrain/reasons", "requested by hand")
        notifier.notifier().notify(
            retraining_started(
                pipeline=name,
                reasons=reasons.split("; "),
                models=list(families),
                partition=context.partition_key,
                run_id=context.run.run_id,
                key=f"started:{name}:{context.run.run_id}",
            )
        )
        split = split_for_training(settings)(frame, spec, n_holdout=sample.n_holdout)
        window = TrainingWindow(
            split=split, start=start, end=end, fingerprint=fingerprint, sample=sample.to_dict()
        ).with_bands(spec, pipeline.timescales)  # once here, not once per candidate
        parts = split.describe(spec.time_column)
        context.log.info(
            f"training window {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}: {sample.n_window} "
            "records"
            + (
                f", read as a seeded sample of {len(frame)} (RETRAIN_TRAINING_MAX_ROWS)"
                if sample.sampled
                else ""
            )
        )
        yield dg.Output(
            window,
            metadata={
                "dagster/row_count": dg.MetadataValue.int(len(frame)),
                "n_window": dg.MetadataValue.int(sample.n_window),
                "training_sample": dg.MetadataValue.json(sample.to_dict()),
                "data_fingerprint": dg.MetadataValue.text(fingerprint),
                "window": dg.MetadataValue.text(f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}"),
                "window_start": dg.MetadataValue.text(start.isoformat()),
                "window_end": dg.MetadataValue.text(end.isoformat()),
                "parts": dg.MetadataValue.json(parts),
            },
        )

    def base_candidate(family: str) -> dg.AssetsDefinition:
        @dg.asset(
            key=candidate_key(pipeline, family),
            group_name=f"{name}_training",
            partitions_def=partitions_def,
            ins={"training_data": dg.AssetIn(window_key)},
            kinds={"python"},
            op_tags=training_step_tags(),  # Kubernetes resource requests per training step
            description=f"A {family.replace('_', ' ')} trained on the period's training window "
            "and registered as a new model version (the asset's value is the version number).",
        )
        def candidate(
            context: dg.AssetExecutionContext,
            platform: PlatformResource,
            training_data: TrainingWindow,
        ) -> dg.Output[int]:
            model = train_model(family, training_data.split, spec)
            return _register(context, platform.registry(), model, training_data)

        return candidate

    def _register(
        context: dg.AssetExecutionContext, registry: Registry, model, window: TrainingWindow
    ) -> dg.Output[int]:
        version = register_candidate(
            registry, name, model, window, spec, run_id=context.run.run_id,
            actor=actor_of(context), scales=pipeline.timescales,
        )  # fmt: skip
        # the volume trigger counts records after this, whatever the promotion decision
        registry.set_watermark(
            name, window.split.holdout[spec.time_column].max(), run_id=context.run.run_id
        )
        context.log.info(
            f"{model.family} registered as v{version.version} ({model.training_seconds:.1f} s)"
        )
        return dg.Output(
            version.version, metadata=candidate_metadata(version.version, model, version.metrics)
        )

    assets = [training_data, *(base_candidate(family) for family in base)]
    if "ensemble" in families and base:

        @dg.asset(
            key=candidate_key(pipeline, "ensemble"),
            group_name=f"{name}_training",
            partitions_def=partitions_def,
            ins={
                "training_data": dg.AssetIn(window_key),
                **{family: dg.AssetIn(candidate_key(pipeline, family)) for family in base},
            },
            kinds={"python"},
            op_tags=training_step_tags(),
        )
        def candidate_ensemble(
            context: dg.AssetExecutionContext,
            platform: PlatformResource,
            training_data: TrainingWindow,
            **members: int,
        ) -> dg.Output[int]:
            """Soft voting over the period's other candidates, weighted by their validation
            loss, registered as a new model version."""
            registry = platform.registry()
            models = [load_model(registry, name, version) for version in members.values()]
            model = train_model("ensemble", training_data.split, spec, members=models)
            return _register(context, registry, model, training_data)

        assets.append(candidate_ensemble)
    return assets
