"""Great Expectations results as Dagster asset checks declared on the partitioned asset.

Declaring the checks with ``check_specs`` on ``current_data`` (rather than as separate
``@asset_check``s taking it as input) validates the one period being materialized instead of
loading every partition.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg

from retraining_assets.core.validation import CHECKS, CheckOutcome


def period_check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            check.name,
            asset=asset_key,
            blocking=check.blocking,
            description=("Blocks downstream: " if check.blocking else "Warns: ")
            + check.description,
        )
        for check in CHECKS
    ]


def check_results(outcomes: list[CheckOutcome], partition: str) -> Iterator[dg.AssetCheckResult]:
    for outcome in outcomes:
        severity = dg.AssetCheckSeverity.ERROR if outcome.blocking else dg.AssetCheckSeverity.WARN
        yield dg.AssetCheckResult(
            check_name=outcome.name,
            passed=outcome.passed,
            severity=severity,
            description=f"{partition}: {outcome.summary}",
            metadata={
                "partition": partition,
                "expectations": outcome.expectations,
                "failed_expectations": dg.MetadataValue.json(outcome.failures),
            },
        )
