"""Great Expectations results as Dagster asset checks declared on the partitioned asset.

Declaring the checks with ``check_specs`` on ``current_data`` (rather than as separate
``@asset_check``s taking it as input) validates the one period being materialized instead of
loading every partition. The specs share the asset's partitions, so each evaluation is
recorded against its period (the UI shows every partition's own check status) and resolves
the run's planned evaluation of that period instead of leaving it behind as "skipped".
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import dagster as dg

from retraining_assets.core.validation import CHECKS, CheckOutcome


def partitioned_check_spec(
    name: str, asset: dg.AssetKey, partitions_def: dg.PartitionsDefinition | None, **spec
) -> dg.AssetCheckSpec:
    """A check evaluated once per partition of ``asset`` (``partitions_def``: the asset's)."""
    with warnings.catch_warnings():
        # partitioned check specs are a preview in Dagster 1.13; they are what records a
        # partition on each evaluation, so the warning would only repeat at every import
        warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec")
        return dg.AssetCheckSpec(name, asset=asset, partitions_def=partitions_def, **spec)


def period_check_specs(
    asset_key: dg.AssetKey, partitions_def: dg.PartitionsDefinition
) -> list[dg.AssetCheckSpec]:
    return [
        partitioned_check_spec(
            check.name,
            asset_key,
            partitions_def,
            blocking=check.blocking,
            description=("Blocks downstream: " if check.blocking else "Warns: ")
            + check.description,
        )
        for check in CHECKS
    ]


def check_results(outcomes: list[CheckOutcome]) -> Iterator[dg.AssetCheckResult]:
    """One result per check, recorded against the partition being materialized."""
    for outcome in outcomes:
        severity = dg.AssetCheckSeverity.ERROR if outcome.blocking else dg.AssetCheckSeverity.WARN
        yield dg.AssetCheckResult(
            check_name=outcome.name,
            passed=outcome.passed,
            severity=severity,
            description=outcome.summary,
            metadata={
                "expectations": outcome.expectations,
                "failed_expectations": dg.MetadataValue.json(outcome.failures),
            },
        )
