"""Drive the real definitions period by period, as the Dagster daemon would, in one process.

For each period: the monitoring job (what the monitoring schedule launches), then one tick of
the retraining sensor, evaluated daemon-less, and the retraining run it requests. The demo
and the end-to-end tests use this; in production the daemon does the same.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

import dagster as dg

from retraining_assets.core.pipeline import Pipeline
from retraining_assets.defs.jobs import monitoring_job_name, reference_job_name, retraining_job_name

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class PeriodOutcome:
    """What happened in one simulated period, read back from the runs' events."""

    partition: str
    monitoring: dg.ExecuteInProcessResult
    sensor: dg.RunRequest | dg.SkipReason | None = None
    retraining: dg.ExecuteInProcessResult | None = None
    metadata: dict[str, dict] = field(default_factory=dict)  # asset name -> metadata values
    checks: dict[str, bool] = field(default_factory=dict)  # check name -> passed

    def value(self, asset: str, key: str, default=None):
        return self.metadata.get(asset, {}).get(key, default)

    @property
    def retrain_causes(self) -> str | None:
        """The causes the sensor put on the retraining run it requested (None: no request)."""
        if isinstance(self.sensor, dg.RunRequest):
            return self.sensor.tags.get("retrain/causes")
        return None


@dataclass
class Simulation:
    defs: dg.Definitions
    pipeline: Pipeline
    instance: dg.DagsterInstance

    def job(self, name: str) -> dg.JobDefinition:
        return self.defs.resolve_job_def(name)

    def refresh_reference(self) -> dg.ExecuteInProcessResult:
        return self.job(reference_job_name(self.pipeline.name)).execute_in_process(
            instance=self.instance, run_config=QUIET
        )

    def tick(self) -> dg.RunRequest | dg.SkipReason | None:
        """One evaluation of the retraining sensor against the instance, as the daemon does."""
        sensor = self.defs.resolve_sensor_def(f"{self.pipeline.name}_retraining_sensor")
        with dg.build_sensor_context(
            instance=self.instance, definitions=self.defs, resources=self.defs.resources
        ) as context:
            result = sensor.evaluate_tick(context)
        if result.run_requests:
            return result.run_requests[0]
        return dg.SkipReason(result.skip_message) if result.skip_message else None

    def period(self, partition: str) -> PeriodOutcome:
        name = self.pipeline.name
        monitoring = self.job(monitoring_job_name(name)).execute_in_process(
            instance=self.instance, partition_key=partition, run_config=QUIET, raise_on_error=False
        )
        outcome = PeriodOutcome(partition, monitoring)
        _collect(outcome, monitoring)
        if not monitoring.success:
            return outcome
        outcome.sensor = self.tick()
        if isinstance(outcome.sensor, dg.RunRequest):
            request = outcome.sensor
            outcome.retraining = self.job(retraining_job_name(name)).execute_in_process(
                instance=self.instance,
                partition_key=request.partition_key,
                tags=request.tags,
                run_config=QUIET,
                raise_on_error=False,
            )
            _collect(outcome, outcome.retraining)
        return outcome

    def run(self, partitions: list[str]) -> Iterator[PeriodOutcome]:
        for partition in partitions:
            yield self.period(partition)


def _collect(outcome: PeriodOutcome, result: dg.ExecuteInProcessResult) -> None:
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        values = {key: value.value for key, value in materialization.metadata.items()}
        outcome.metadata[materialization.asset_key.path[-1]] = values
    for evaluation in result.get_asset_check_evaluations():
        outcome.checks[evaluation.check_name] = evaluation.passed
