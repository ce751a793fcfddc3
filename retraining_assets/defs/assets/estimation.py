"""The champion's performance on each period estimated before its labels arrive."""

from collections.abc import Iterator

import dagster as dg

from retraining_assets.core.candidates import load_model
from retraining_assets.core.estimation import estimate_period
from retraining_assets.core.labels import labelled
from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.registry import CHAMPION
from retraining_assets.defs.periods import naive_utc
from retraining_assets.defs.resources import ClockResource, PlatformResource, RecordsResource


def _value(value: float | None) -> dg.MetadataValue:
    return dg.MetadataValue.float(value) if value is not None else dg.MetadataValue.text("n/a")


def estimation_metadata(result: dict, version: int) -> dict[str, dg.MetadataValue]:
    """The estimate, its interval and, once the labels arrived, the realized metric."""
    estimate = result["estimate"]
    return {
        "champion_version": dg.MetadataValue.int(version),
        "metric": dg.MetadataValue.text(result["metric"]),
        "estimated_metric": _value(estimate["value"]),
        "interval": dg.MetadataValue.text(
            f"{estimate['lower']:.4f} to {estimate['upper']:.4f}"
            if estimate["value"] is not None
            else "n/a"
        ),
        "lower": _value(estimate["lower"]),
        "upper": _value(estimate["upper"]),
        "method": dg.MetadataValue.text(estimate["method"] or "none"),
        "skipped": dg.MetadataValue.text(estimate["skipped"] or "-"),
        "realized": _value(result["realized"]),
        "labelled_rows": dg.MetadataValue.int(result["labelled_rows"]),
        "dagster/row_count": dg.MetadataValue.int(result["rows"]),
        "estimates": dg.MetadataValue.json(result["estimates"]),
    }


def build_estimation_assets(
    pipeline: Pipeline, partitions_def: dg.TimeWindowPartitionsDefinition
) -> list[dg.AssetsDefinition]:
    name = pipeline.name

    @dg.asset(
        key=[name, "estimated_performance"],
        group_name=f"{name}_monitoring",
        partitions_def=partitions_def,
        deps=[dg.AssetKey([name, "current_data"]), dg.AssetKey([name, "reference_data"])],
        output_required=False,
        kinds={"sklearn"},
    )
    def estimated_performance(
        context: dg.AssetExecutionContext,
        platform: PlatformResource,
        records: RecordsResource,
        clock: ClockResource,
    ) -> Iterator[dg.Output[dict]]:
        """The champion's primary metric on this period estimated without labels (CBPE for
        classification, DLE for regression, fitted on its holdout), with a ±3 standard error
        interval, and the realized metric once every label of the period has arrived
        (`RETRAIN_LABEL_DELAY`; by then `<p>_labelled_performance_schedule` scores the period
        again). A period above `RETRAIN_MATERIALIZE_MAX_ROWS` is estimated on its seeded sample
        (`RETRAIN_DRIFT_MAX_RECORDS`). Skipped while there is no champion."""
        registry = platform.registry()
        champion = registry.get_alias(name, CHAMPION)
        if champion is None:
            context.log.info("no champion yet: nothing to estimate")
            return
        reference = platform.references().current(name, registry)
        own = reference is not None and reference.champion_version == champion.version
        window = partitions_def.time_window_for_partition_key(context.partition_key)
        start, end = naive_utc(window.start), naive_utc(window.end)
        source, partition = records.source(name), context.partition_key
        rows = source.count(start, end)
        # a period too large to copy is estimated on the seeded sample current_data validated
        # (memory stays bounded; the standard error is the sample's), else on every record
        frame = (
            pipeline.period_sample(source, start, end, rows, partition)
            if pipeline.described(rows)
            else source.load(start, end)
        )
        seen = labelled(
            frame, pipeline.spec.time_column, clock.now(), pipeline.settings.label_delay_duration
        )
        result = estimate_period(
            load_model(registry, name, champion.version),
            reference.estimator if own else None,
            frame,
            pipeline.spec,
            pipeline.primary_metric,
            seen,
        )
        estimate = result["estimate"]
        context.log.info(
            f"{context.partition_key}: estimated {result['metric']} "
            + (
                f"{estimate['value']:.4f} ({estimate['lower']:.4f} to {estimate['upper']:.4f})"
                if estimate["value"] is not None
                else f"not computed: {estimate['skipped']}"
            )
        )
        yield dg.Output(
            {"version": champion.version, **result},
            metadata=estimation_metadata(result, champion.version)
            | {"period_rows": dg.MetadataValue.int(rows)},
        )

    return [estimated_performance]
