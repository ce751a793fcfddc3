from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from retraining_assets.core.pipeline import Pipeline
from retraining_assets.definitions import build_definitions
from retraining_assets.defs.periods import partitions_for
from retraining_assets.settings import load_settings

MONTH = "2024-02-01"  # offset 1 of the small stream


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def _run(pipeline: Pipeline, instance, partition: str | None, extra: list | None = None):
    defs = build_definitions(pipeline.settings, [pipeline])
    assets = [*defs.assets, *(extra or [])]
    resources = defs.resources
    dg.materialize(
        assets,
        instance=instance,
        resources=resources,
        selection=[f"{pipeline.name}/reference_data"],
    )
    monitored = dg.AssetSelection.assets(
        [pipeline.name, "current_data"], [pipeline.name, "drift_report"]
    )
    return dg.materialize(
        assets,
        instance=instance,
        resources=resources,
        partition_key=partition,
        selection=monitored | dg.AssetSelection.assets(*(asset.key for asset in extra or [])),
        raise_on_error=False,
    )


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _downstream(pipeline: Pipeline) -> dg.AssetsDefinition:
    @dg.asset(
        key=[pipeline.name, "downstream"],
        partitions_def=partitions_for(pipeline),
        ins={"current": dg.AssetIn([pipeline.name, "current_data"])},
    )
    def downstream(current: pd.DataFrame) -> int:
        return len(current)

    return downstream


def test_a_month_materializes_with_metadata_and_passing_checks(
    seeded_demo, small_stream, instance
) -> None:
    result = _run(seeded_demo, instance, MONTH, [_downstream(seeded_demo)])
    assert result.success
    checks = _checks(result)
    assert set(checks) == {
        "schema",
        "target_valid",
        "non_empty",
        "numeric_ranges",
        "categorical_domains",
        "null_rates",
    }
    assert all(check.passed for check in checks.values())
    materialization = result.asset_materializations_for_node("demo__current_data")[0]
    assert materialization.metadata["dagster/row_count"].value == len(small_stream.generate(1))
    assert materialization.partition == MONTH
    assert result.output_for_node("demo__downstream") == len(small_stream.generate(1))


def test_an_empty_month_fails_a_blocking_check_and_stops_downstream(seeded_demo, instance) -> None:
    result = _run(seeded_demo, instance, "2024-04-01", [_downstream(seeded_demo)])  # not seeded
    assert not result.success
    non_empty = _checks(result)["non_empty"]
    assert not non_empty.passed and non_empty.severity == dg.AssetCheckSeverity.ERROR
    assert "observed 0" in non_empty.description
    assert result.asset_materializations_for_node("demo__current_data")  # recorded, visible
    assert result.asset_materializations_for_node("demo__downstream") == []


def test_drifted_month_only_warns_and_flows_on(settings, platform_db, instance) -> None:
    from retraining_assets.core.demo import ABRUPT, DemoStream
    from retraining_assets.core.pipeline import demo_pipeline

    stream = DemoStream(
        rows_per_month=300, end_month=pd.Timestamp("2024-12-01"), months=ABRUPT.first_offset + 1
    )
    stream.seed_database(platform_db)
    pipeline = demo_pipeline(settings, stream)
    result = _run(
        pipeline, instance, stream.partition_key(ABRUPT.first_offset), [_downstream(pipeline)]
    )
    assert result.success
    domains = _checks(result)["categorical_domains"]
    assert not domains.passed and domains.severity == dg.AssetCheckSeverity.WARN
    failed = domains.metadata["failed_expectations"].value
    assert failed[0]["column"] == "channel" and "partner_api" in failed[0]["examples"]
    assert result.output_for_node("demo__downstream") > 0


def test_null_targets_in_a_user_file_block_that_month(
    tmp_path: Path, small_stream, instance
) -> None:
    frame = pd.concat([small_stream.generate(offset) for offset in range(4)], ignore_index=True)
    frame.loc[frame["event_time"] >= pd.Timestamp("2024-04-01"), "defaulted"] = None
    path = tmp_path / "records.csv"
    frame.drop(columns=["customer_id"]).to_csv(path, index=False)
    settings = load_settings(
        home=tmp_path / ".retrain",
        source_path=str(path),
        time_column="event_time",
        target="defaulted",
        pipeline_name="loans",
    )
    from retraining_assets.core.pipeline import user_pipeline

    pipeline = user_pipeline(settings)
    assert pipeline.spec.classes == ("0", "1")  # a 0/1 target read as float (nulls)
    good = _run(pipeline, instance, "2024-02-01")
    assert good.success
    bad = _run(pipeline, instance, "2024-04-01")
    target = _checks(bad)["target_valid"]
    assert not bad.success and not target.passed
    assert target.metadata["failed_expectations"].value[0]["column"] == "defaulted"
