"""Drive the real definitions period by period, as the Dagster daemon would, in one process.

For each period: the monitoring job (what the monitoring schedule launches), then one tick of
the retraining sensor, evaluated daemon-less, and the retraining run it requests. With live
traffic (``traffic``), the period's records are first replayed through the prediction service,
and after each chunk the rollout sensor ticks and its run judges the rollout. The demo and the
end-to-end tests use this; in production the daemon does the same.

Every run is a run of the code location's job, as the daemon or ``dagster job launch`` would
create it (``launch.py``): the webserver lists it under its job, on the timeline and on the
schedule's or sensor's tick, and re-executes it as the same version.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd
from dagster._core.scheduler.instigation import InstigatorTick

from retraining_assets.core.pipeline import Pipeline
from retraining_assets.demo.launch import CodeLocation, Launcher, RunResult
from retraining_assets.service.traffic import Replayed

if TYPE_CHECKING:
    from retraining_assets.service.server import LocalService
from retraining_assets.defs.jobs import (
    monitoring_job_name,
    reference_job_name,
    retraining_job_name,
    rollout_job_name,
)


@dataclass
class _Materialized:
    """What runs recorded, read back from their events."""

    # asset name -> metadata values; check name -> passed
    metadata: dict[str, dict] = field(default_factory=dict, kw_only=True)
    checks: dict[str, bool] = field(default_factory=dict, kw_only=True)

    def value(self, asset: str, key: str, default=None):
        return self.metadata.get(asset, {}).get(key, default)


@dataclass
class PeriodOutcome(_Materialized):
    """What happened in one simulated period."""

    partition: str
    monitoring: RunResult
    sensor: dg.RunRequest | dg.SkipReason | None = None
    retraining: RunResult | None = None

    @property
    def retrain_causes(self) -> str | None:
        """The causes the sensor put on the retraining run it requested (None: no request)."""
        if isinstance(self.sensor, dg.RunRequest):
            return self.sensor.tags.get("retrain/causes")
        return None


@dataclass
class RolloutOutcome(_Materialized):
    """One rollout evaluation: the sensor's request and the run it started."""

    request: dg.RunRequest
    result: RunResult

    @property
    def change(self) -> tuple[int, str] | None:
        """The traffic change the run made: the challenger's version and its new share ("25%")
        or the rollout's end ("promoted", "rolled back"); None: the split stayed."""
        status = self.value("traffic_split", "status")
        if status is None:
            return None
        version = self.value("traffic_split", "challenger_version")
        if status == "active":
            return version, f"{self.value('traffic_split', 'share'):.0%}"
        return version, status.replace("_", " ")


@dataclass
class TrafficOutcome:
    """A period's live traffic: what the service served, and the rollout runs it caused."""

    replayed: Replayed = field(default_factory=Replayed)
    rollouts: list[RolloutOutcome] = field(default_factory=list)

    @property
    def changes(self) -> list[tuple[int, str]]:
        return [change for run in self.rollouts if (change := run.change) is not None]


@dataclass
class Simulation:
    defs: dg.Definitions
    pipeline: Pipeline
    instance: dg.DagsterInstance
    location: CodeLocation = field(default_factory=CodeLocation)

    def __post_init__(self) -> None:
        self._launcher = Launcher(self.defs, self.instance, self.location)
        self._last_tick: InstigatorTick | None = None

    def job(self, name: str) -> dg.JobDefinition:
        return self.defs.resolve_job_def(name)

    def launch(self, job_name: str, partition_key: str | None = None, **kwargs) -> RunResult:
        """One run of the code location's ``job_name``, executed in this process."""
        return self._launcher.launch(job_name, partition_key, **kwargs)

    def refresh_reference(self) -> RunResult:
        return self.launch(reference_job_name(self.pipeline.name))

    def tick(self, sensor: str = "retraining") -> dg.RunRequest | dg.SkipReason | None:
        """One evaluation of the pipeline's ``<sensor>_sensor`` against the instance, as the
        daemon does; recorded as the sensor's tick. Its run, if any, is launched by the caller
        (``period``, ``rollout``) and attributed to the tick."""
        name = f"{self.pipeline.name}_{sensor}_sensor"
        definition = self.defs.resolve_sensor_def(name)
        with dg.build_sensor_context(
            instance=self.instance, definitions=self.defs, resources=self.defs.resources
        ) as context:
            result = definition.evaluate_tick(context)
        if result.run_requests:
            request = result.run_requests[0]
        else:
            request = dg.SkipReason(result.skip_message) if result.skip_message else None
        self._last_tick = self._launcher.record_sensor_tick(name, request)
        return request

    def _launch_requested(self, job_name: str, request: dg.RunRequest) -> RunResult:
        return self.launch(
            job_name,
            request.partition_key,
            tags=request.tags,
            run_key=request.run_key,
            tick=self._last_tick,
        )

    def period(self, partition: str) -> PeriodOutcome:
        name = self.pipeline.name
        monitoring = self.launch(
            monitoring_job_name(name), partition, schedule=f"{name}_monitoring_schedule"
        )
        outcome = PeriodOutcome(partition, monitoring)
        _collect(outcome, monitoring)
        if not monitoring.success:
            return outcome
        outcome.sensor = self.tick()
        if isinstance(outcome.sensor, dg.RunRequest):
            outcome.retraining = self._launch_requested(retraining_job_name(name), outcome.sensor)
            _collect(outcome, outcome.retraining)
        return outcome

    def rollout(self) -> RolloutOutcome | None:
        """One tick of the rollout sensor and the run it requests (None: nothing to judge)."""
        request = self.tick("rollout")
        if not isinstance(request, dg.RunRequest):
            return None
        result = self._launch_requested(rollout_job_name(self.pipeline.name), request)
        outcome = RolloutOutcome(request, result)
        _collect(outcome, result)
        return outcome

    def traffic(
        self, service: LocalService, records: pd.DataFrame, chunk_rows: int
    ) -> TrafficOutcome:
        """Replay ``records`` through the service ``chunk_rows`` at a time, reporting their
        outcomes; after each chunk (once the log holds it), one rollout evaluation."""
        outcome = TrafficOutcome()
        for replayed in service.replay.replay(records, chunk_rows):
            outcome.replayed.add(replayed)
            service.flush()
            judged = self.rollout()
            if judged is not None:
                outcome.rollouts.append(judged)
        return outcome

    def run(self, partitions: list[str]) -> Iterator[PeriodOutcome]:
        for partition in partitions:
            yield self.period(partition)


def _collect(outcome: _Materialized, result: RunResult) -> None:
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        values = {key: value.value for key, value in materialization.metadata.items()}
        outcome.metadata[materialization.asset_key.path[-1]] = values
    for evaluation in result.get_asset_check_evaluations():
        outcome.checks[evaluation.check_name] = evaluation.passed
