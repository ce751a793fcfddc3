"""Runs of the code location's jobs, created as the daemon or ``dagster job launch`` creates
them, and executed in this process.

A run the webserver can call its own carries the code location's origin (the location and
repository it lists the job under, the label its Runs tabs and timeline filter on), the job's
snapshot (so re-executing it raises no "different version" warning), and, when a schedule or
a sensor asked for it, that instigator's name tag and a tick that lists it. ``dagster job
launch`` gets the same from a code server in a subprocess; the demo makes ~120 runs, so it
builds the run from the definitions it already holds and executes it here, in process, which
costs milliseconds instead of seconds per run.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.definitions.selector import InstigatorSelector
from dagster._core.execution.api import create_execution_plan, execute_run
from dagster._core.execution.execute_in_process import merge_run_tags
from dagster._core.origin import (
    DEFAULT_DAGSTER_ENTRY_POINT,
    JobPythonOrigin,
    RepositoryPythonOrigin,
)
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteInstigatorOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.scheduler.instigation import (
    InstigatorTick,
    InstigatorType,
    TickData,
    TickStatus,
)
from dagster._core.storage.tags import RUN_KEY_TAG, SCHEDULE_NAME_TAG, SENSOR_NAME_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

RunResult = dg.JobExecutionResult

# the demo's runs log warnings only; their steps run in this process, one after another
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}

# a code location holding a Definitions object has this one repository
REPOSITORY = "__repository__"


@dataclass(frozen=True)
class CodeLocation:
    """Where the webserver loads the definitions from: ``workspace.yaml``, ``dagster dev`` and
    ``dg dev`` in the project root all name the location ``retraining_assets``."""

    name: str = "retraining_assets"
    module: str = "retraining_assets.definitions"
    attribute: str = "defs"
    working_directory: str = field(default_factory=os.getcwd)

    def repository_origin(self) -> RemoteRepositoryOrigin:
        target = LoadableTargetOrigin(
            executable_path=sys.executable,
            module_name=self.module,
            working_directory=self.working_directory,
        )
        return RemoteRepositoryOrigin(
            ManagedGrpcPythonEnvCodeLocationOrigin(target, self.name), REPOSITORY
        )

    def python_origin(self) -> RepositoryPythonOrigin:
        pointer = ModuleCodePointer(self.module, self.attribute, self.working_directory)
        return RepositoryPythonOrigin(
            sys.executable, pointer, entry_point=DEFAULT_DAGSTER_ENTRY_POINT
        )

    def selector_id(self, instigator: str) -> str:
        return InstigatorSelector(
            location_name=self.name, repository_name=REPOSITORY, name=instigator
        ).get_id()


class Launcher:
    """Creates and executes runs of ``defs``' jobs as runs of ``location``'s jobs."""

    def __init__(
        self, defs: dg.Definitions, instance: dg.DagsterInstance, location: CodeLocation
    ) -> None:
        self.defs = defs
        self.instance = instance
        self.location = location
        self._repository = location.repository_origin()
        self._python = location.python_origin()

    def launch(
        self,
        job_name: str,
        partition_key: str | None = None,
        *,
        tags: dict[str, str] | None = None,
        run_key: str | None = None,
        tick: InstigatorTick | None = None,
        schedule: str | None = None,
        asset_selection: list[dg.AssetKey] | None = None,
        resources: dict | None = None,
    ) -> RunResult:
        """One run of ``job_name`` (of ``partition_key``; of its ``asset_selection`` only),
        created with the location's origin and executed to its end; with ``tick``, the run of
        that sensor tick; with ``schedule``, the run of a tick of that schedule, recorded now.
        ``resources``: the run's resource config (``{"clock": {"config": {...}}}``)."""
        job = self.defs.resolve_job_def(job_name)
        selection = frozenset(asset_selection) if asset_selection else None
        # the run and its plan are the subset's; execute_run subsets the whole job itself
        planned = job.get_subset(asset_selection=selection) if selection else job
        # in process unless RETRAIN_EXECUTOR chose another executor (Celery, Kubernetes)
        in_process = job.executor_def.name == dg.multi_or_in_process_executor.name
        run_config = {**QUIET, **(IN_PROCESS if in_process else {})}
        if resources:
            run_config["resources"] = resources
        run_tags = dict(merge_run_tags(job, partition_key, tags, None, self.instance, run_config))
        if run_key:
            run_tags[RUN_KEY_TAG] = run_key
        if tick is not None:
            run_tags[SENSOR_NAME_TAG] = tick.instigator_name
        if schedule is not None:
            run_tags[SCHEDULE_NAME_TAG] = schedule
            tick = self._start_tick(schedule, InstigatorType.SCHEDULE)
        plan = create_execution_plan(
            InMemoryJob(planned),
            run_config=run_config,
            instance_ref=self.instance.get_ref(),
            tags=run_tags,
        )
        run = self.instance.create_run_for_job(
            job_def=planned,
            execution_plan=plan,
            run_config=run_config,
            tags=run_tags,
            asset_selection=selection,
            status=dg.DagsterRunStatus.NOT_STARTED,
            remote_job_origin=RemoteJobOrigin(self._repository, job_name),
            job_code_origin=JobPythonOrigin(job_name, self._python),
        )
        if tick is not None:
            self._finish_tick(tick.with_run_info(run.run_id, run_key), TickStatus.SUCCESS)
        return execute_run(InMemoryJob(job), run, self.instance)

    def record_sensor_tick(
        self, sensor: str, request: dg.RunRequest | dg.SkipReason | None
    ) -> InstigatorTick:
        """A tick of ``sensor`` as the daemon records it: skipped with its reason, or started,
        to be marked successful with its run by ``launch(tick=...)``."""
        tick = self._start_tick(sensor, InstigatorType.SENSOR)
        if isinstance(request, dg.RunRequest):
            return tick
        reason = request.skip_message if isinstance(request, dg.SkipReason) else None
        return self._finish_tick(tick, TickStatus.SKIPPED, skip_reason=reason)

    def _start_tick(self, name: str, kind: InstigatorType) -> InstigatorTick:
        origin = RemoteInstigatorOrigin(self._repository, name)
        return self.instance.create_tick(
            TickData(
                instigator_origin_id=origin.get_id(),
                instigator_name=name,
                instigator_type=kind,
                status=TickStatus.STARTED,
                timestamp=time.time(),
                selector_id=self.location.selector_id(name),
            )
        )

    def _finish_tick(
        self, tick: InstigatorTick, status: TickStatus, **changes: object
    ) -> InstigatorTick:
        tick = tick.with_status(status, **changes)
        self.instance.update_tick(tick)
        return tick
