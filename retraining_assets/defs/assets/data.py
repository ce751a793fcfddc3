"""Data assets: each period's records, validated, and the reference they are compared with."""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from retraining_assets.core.engines.gx_sql import validate_large_period
from retraining_assets.core.period_description import PeriodDescription, describe_period
from retraining_assets.core.pipeline import Pipeline, validation_tolerances
from retraining_assets.core.reference import refresh_reference
from retraining_assets.core.validation import validate_period
from retraining_assets.defs.checks import check_results, period_check_specs
from retraining_assets.defs.periods import naive_utc
from retraining_assets.defs.resources import PlatformResource, RecordsResource


def frame_summary(frame: pd.DataFrame, time_column: str) -> dict[str, dg.MetadataValue]:
    """Row count, time span and a per-column summary for the asset's metadata."""
    columns = pd.DataFrame(
        {
            "dtype": frame.dtypes.astype(str),
            "nulls": frame.isna().sum(),
            "distinct": frame.nunique(),
        }
    )
    times = frame[time_column]
    return {
        "dagster/row_count": dg.MetadataValue.int(len(frame)),
        "first_record": dg.MetadataValue.text(str(times.min()) if len(frame) else "-"),
        "last_record": dg.MetadataValue.text(str(times.max()) if len(frame) else "-"),
        "columns": dg.MetadataValue.md(columns.to_markdown()),
    }


def description_summary(description: PeriodDescription) -> dict[str, dg.MetadataValue]:
    """The metadata of a period stored as a description: its size and where it is."""
    where = description.query or "; ".join(
        f"{part.path} (row groups {', '.join(map(str, part.row_groups))})"
        for part in description.files
    )
    return {
        "dagster/row_count": dg.MetadataValue.int(description.rows),
        "validated_rows": dg.MetadataValue.int(description.validated_rows),
        "statistics_sample_rows": dg.MetadataValue.int(description.sample_rows or 0),
        "stored_as": dg.MetadataValue.text("description"),
        "records_at": dg.MetadataValue.text(where or description.source),
        "statistics": dg.MetadataValue.json(description.statistics),
    }


def build_data_assets(
    pipeline: Pipeline, partitions_def: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    name, spec = pipeline.name, pipeline.spec
    reference_key = dg.AssetKey([name, "reference_data"])
    current_key = dg.AssetKey([name, "current_data"])

    @dg.asset(
        key=reference_key,
        group_name=f"{name}_data",
        deps=[dg.AssetKey([name, "champion_model"])],
        kinds={"pandas"},
    )
    def reference_data(
        context: dg.AssetExecutionContext, platform: PlatformResource, records: RecordsResource
    ) -> dg.MaterializeResult:
        """What every period is validated and compared against: range/domain bounds and the
        drift profile of the champion's training window (before the first champion, the first
        complete training window of the records). Refreshed whenever the champion changes;
        moved to the newest judged training window when a judgement keeps the champion
        (`RETRAIN_DRIFT_REFERENCE=validated`)."""
        source = records.source(name)
        store = platform.references()
        reference = refresh_reference(pipeline, platform.registry(), store, source)
        path = store.path(name)
        context.log.info(
            f"reference: {reference.origin}, {reference.rows} records, {reference.window}"
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": dg.MetadataValue.int(reference.rows),
                "window": dg.MetadataValue.text(reference.window),
                "origin": dg.MetadataValue.text(reference.origin),
                "profile_hash": dg.MetadataValue.text(reference.profile.content_hash),
                "path": dg.MetadataValue.path(str(path)),
            }
        )

    @dg.asset(
        key=current_key,
        group_name=f"{name}_data",
        partitions_def=partitions_def,
        check_specs=period_check_specs(current_key, partitions_def),
        kinds={"pandas", "great_expectations"},
    )
    def current_data(
        context: dg.AssetExecutionContext, platform: PlatformResource, records: RecordsResource
    ) -> Iterator[dg.Output | dg.AssetCheckResult]:
        """One monitoring period (`RETRAIN_PARTITION`) of labelled records, validated with
        Great Expectations: schema, target and a non-empty period block downstream assets;
        ranges, domains and null rates learned from the reference only warn, because drifted
        periods must still reach drift detection. A period above
        `RETRAIN_MATERIALIZE_MAX_ROWS` records is validated in full by its database (files: on
        a seeded sample) and stored as a description (row count, query or Parquet row groups,
        validated rows, statistics), not copied."""
        window = context.partition_time_window
        start, end = naive_utc(window.start), naive_utc(window.end)
        source, partition = records.source(name), context.partition_key
        reference = platform.references().current(name, platform.registry())
        bounds = reference.bounds if reference else None  # no reference yet: warnings skipped
        tolerances = validation_tolerances(pipeline.settings)
        rows = source.count(start, end)
        if pipeline.described(rows):  # described, not copied: downstream reads the source
            sample = pipeline.period_sample(source, start, end, rows, partition)
            checked = validate_large_period(
                source, start, end, rows, sample, spec, bounds, tolerances
            )
            outcomes = checked.outcomes
            description = describe_period(
                source, partition, start, end, rows, sample, outcomes, checked.validated_rows
            )
            context.log.info(
                f"{partition}: {rows} records from {source.description}, above "
                f"RETRAIN_MATERIALIZE_MAX_ROWS ({pipeline.settings.materialize_max_rows}): "
                f"{checked.validated_rows} validated "
                f"{checked.where} and stored as a description"
            )
            value, metadata = description, description_summary(description)
        else:
            frame = source.load(start, end)
            context.log.info(f"{partition}: {len(frame)} records from {source.description}")
            outcomes = validate_period(frame, spec, bounds, tolerances)
            value, metadata = frame, frame_summary(frame, spec.time_column)
        failed = [o.name for o in outcomes if not o.passed]
        yield dg.Output(
            value, metadata={**metadata, "failed_checks": dg.MetadataValue.json(failed)}
        )
        yield from check_results(outcomes)

    return [reference_data, current_data]
