"""Drive the real definitions period by period, as the Dagster daemon would, in one process.

Time is simulated: each monitoring period is lived at the moments the daemon would act on
it. The retraining schedule's ticks since the previous period's monitoring come first (each
asks for its own newest complete period); then, 15 minutes after the period ends, the
monitoring job (what the monitoring schedule launches), with a label delay the
labelled-performance schedule's tick at that moment and its run (the daemon ticks it daily;
once a period is enough here), one tick of the retraining sensor, evaluated daemon-less with
the clock set to that moment, and the retraining run it requests. The sensors' "now", the
retrain cooldown and (with a label delay) which labels a run sees are therefore the simulated
moment, never the wall clock. With live traffic (``traffic``), the period's records are first
replayed through the prediction service, and after each chunk the rollout sensor ticks and its
run judges the rollout. The demo and the end-to-end tests use this; in production the daemon
does the same.

Every run is a run of the code location's job, as the daemon or ``dagster job launch`` would
create it (``launch.py``): the webserver lists it under its job, on the timeline and on the
schedule's or sensor's tick, and re-executes it as the same version.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd
from dagster._core.scheduler.instigation import InstigatorTick
from dagster._core.storage.tags import RUN_KEY_TAG, SCHEDULE_NAME_TAG

from retraining_assets.core.pipeline import Pipeline
from retraining_assets.defs.periods import partitions_for, period_start
from retraining_assets.defs.resources import CLOCK, ClockResource
from retraining_assets.defs.schedules import labelled_performance_schedule_name
from retraining_assets.defs.signals import REQUESTED_AT
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

MONITORING_DELAY = timedelta(minutes=15)  # the monitoring schedule's minute after a period ends


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
    """What happened in one simulated period: the retraining schedule's tick (if one fell in
    it) and its run, the monitoring run, the sensor's tick and the run it requested."""

    partition: str
    monitoring: RunResult
    sensor: dg.RunRequest | dg.SkipReason | None = None
    retraining: RunResult | None = None
    schedule: dg.RunRequest | dg.SkipReason | None = None
    scheduled: RunResult | None = None
    # with a label delay: the labelled-performance schedule's tick and its run (an earlier
    # period's champion_performance, kept apart from this period's metadata)
    labelled_request: dg.RunRequest | dg.SkipReason | None = None
    labelled: RunResult | None = None

    @property
    def retrain_causes(self) -> str | None:
        """The causes the sensor put on the retraining run it requested (None: no request)."""
        if isinstance(self.sensor, dg.RunRequest):
            return self.sensor.tags.get("retrain/causes")
        return None

    @property
    def causes(self) -> list[str]:
        """Why training was asked for in this period: the sensor's causes, then the schedule."""
        causes = (self.retrain_causes or "").split(",")
        if isinstance(self.schedule, dg.RunRequest):
            causes.append("schedule")
        return [cause for cause in dict.fromkeys(causes) if cause]

    @property
    def requests(self) -> list[tuple[datetime, list[str]]]:
        """Each retraining asked for in this period: its moment and causes, in order."""
        asked = [r for r in (self.schedule, self.sensor) if isinstance(r, dg.RunRequest)]
        return [
            (datetime.fromisoformat(r.tags[REQUESTED_AT]), r.tags["retrain/causes"].split(","))
            for r in asked
        ]

    @property
    def promoted_at(self) -> datetime | None:
        """When a run of this period moved the champion (the moment it was asked for)."""
        for request, result in ((self.schedule, self.scheduled), (self.sensor, self.retraining)):
            if isinstance(request, dg.RunRequest) and result is not None and _moves(result):
                return datetime.fromisoformat(request.tags[REQUESTED_AT])
        return None

    @property
    def trained(self) -> bool:
        """Whether a run of this period registered candidates (not skipped as already seen)."""
        return self.value("training_data", "data_fingerprint") is not None


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
    now: datetime | None = None  # the simulated moment (naive UTC); None: the wall clock

    def __post_init__(self) -> None:
        self._launcher = Launcher(self.defs, self.instance, self.location)
        self._last_tick: InstigatorTick | None = None

    def job(self, name: str) -> dg.JobDefinition:
        return self.defs.resolve_job_def(name)

    def launch(self, job_name: str, partition_key: str | None = None, **kwargs) -> RunResult:
        """One run of the code location's ``job_name``, executed in this process."""
        return self._launcher.launch(job_name, partition_key, resources=self._run_clock(), **kwargs)

    def _run_clock(self) -> dict | None:
        """With a label delay, a run's clock is the simulated moment too, so its assets see
        the labels that had arrived by then; without one no asset reads the clock."""
        if self.now is None or self.pipeline.settings.label_delay_duration is None:
            return None
        return {CLOCK: {"config": {"moment": self.now.isoformat()}}}

    def refresh_reference(self) -> RunResult:
        return self.launch(reference_job_name(self.pipeline.name))

    def resources(self) -> dict:
        """The code location's resources, with the clock at the simulated moment."""
        clock = ClockResource(moment=self.now.isoformat() if self.now else None)
        return {**self.defs.resources, CLOCK: clock}

    def tick(self, sensor: str = "retraining") -> dg.RunRequest | dg.SkipReason | None:
        """One evaluation of the pipeline's ``<sensor>_sensor`` against the instance, as the
        daemon does, at the simulated moment; recorded as the sensor's tick. Its run, if any,
        is launched by the caller (``period``, ``rollout``) and attributed to the tick."""
        name = f"{self.pipeline.name}_{sensor}_sensor"
        definition = self.defs.resolve_sensor_def(name)
        with dg.build_sensor_context(
            instance=self.instance, definitions=self.defs, resources=self.resources()
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

    def schedule_tick(
        self, moment: datetime, name: str | None = None
    ) -> dg.RunRequest | dg.SkipReason | None:
        """One tick of the schedule ``name`` (the retraining schedule) at ``moment``, as the
        daemon evaluates it."""
        name = name or f"{self.pipeline.name}_retraining_schedule"
        schedule = self.defs.resolve_schedule_def(name)
        with dg.build_schedule_context(
            instance=self.instance,
            scheduled_execution_time=moment.replace(tzinfo=UTC),
            resources=self.resources(),
            repository_def=self.defs.get_repository_def(),
        ) as context:
            result = schedule.evaluate_tick(context)
        if result.run_requests:
            return result.run_requests[0]
        return dg.SkipReason(result.skip_message) if result.skip_message else None

    def retrain(self, request: dg.RunRequest, *, scheduled: bool = False) -> RunResult:
        """The retraining run a sensor's tick (the last one) or a schedule's tick requested."""
        job = retraining_job_name(self.pipeline.name)
        if not scheduled:
            return self._launch_requested(job, request)
        return self.launch(
            job,
            request.partition_key,
            tags=request.tags,
            run_key=request.run_key,
            schedule=f"{self.pipeline.name}_retraining_schedule",
        )

    def labelled_performance(
        self, moment: datetime
    ) -> tuple[dg.RunRequest | dg.SkipReason | None, RunResult | None]:
        """With a label delay: the labelled-performance schedule's tick at ``moment`` and the
        run it asks for, unless one had that run key already (the daemon's dedupe)."""
        if self.pipeline.settings.label_delay_duration is None:
            return None, None
        name = labelled_performance_schedule_name(self.pipeline.name)
        request = self.schedule_tick(moment, name)
        if not isinstance(request, dg.RunRequest):
            return request, None
        seen = self.instance.get_run_records(
            dg.RunsFilter(tags={RUN_KEY_TAG: request.run_key, SCHEDULE_NAME_TAG: name}), limit=1
        )
        if seen:
            return request, None
        result = self.launch(
            monitoring_job_name(self.pipeline.name),
            request.partition_key,
            tags=request.tags,
            run_key=request.run_key,
            schedule=name,
            asset_selection=list(request.asset_selection or []),
        )
        return request, result

    def period(self, partition: str) -> PeriodOutcome:
        """Live one monitoring period: the schedule's ticks since the previous period was
        monitored, then this period's monitoring, a sensor tick and its run."""
        name, scales = self.pipeline.name, self.pipeline.timescales
        start = period_start(partitions_for(self.pipeline), partition)
        monitored_at = scales.period_end(start) + MONITORING_DELAY
        schedule, scheduled = None, None
        for moment in scales.schedule_ticks(start + MONITORING_DELAY, monitored_at):
            self.now = moment
            schedule = self.schedule_tick(moment)
            if isinstance(schedule, dg.RunRequest):
                scheduled = self.retrain(schedule, scheduled=True)
        self.now = monitored_at
        monitoring = self.launch(
            monitoring_job_name(name), partition, schedule=f"{name}_monitoring_schedule"
        )
        outcome = PeriodOutcome(partition, monitoring, schedule=schedule, scheduled=scheduled)
        for result in (scheduled, monitoring):
            if result is not None:
                _collect(outcome, result)
        if not monitoring.success:
            return outcome
        outcome.labelled_request, outcome.labelled = self.labelled_performance(monitored_at)
        outcome.sensor = self.tick()
        if isinstance(outcome.sensor, dg.RunRequest):
            outcome.retraining = self.retrain(outcome.sensor)
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


def _moves(result: RunResult) -> bool:
    """Whether a run moved the champion (materialized ``champion_model`` with a version)."""
    return any(
        event.step_materialization_data.materialization.asset_key.path[-1] == "champion_model"
        and "version" in event.step_materialization_data.materialization.metadata
        for event in result.get_asset_materialization_events()
    )
