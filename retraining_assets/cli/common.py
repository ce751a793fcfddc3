"""What every ``retrain`` command shares: the settings, the pipeline and its registry and
notifier (``Context``), who acts, one ``--pipeline`` option, and errors as one clear line with
exit status 2. Commands import this module, never the group in ``cli/__init__.py``."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import click

from retraining_assets.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:  # the model stack (torch, xgboost, numba) loads only for commands using it
    from retraining_assets.core.notify import Notifier
    from retraining_assets.core.pipeline import Pipeline
    from retraining_assets.core.registry import Actor, AliasMove, Registry

LOCAL_INSTANCE_YAML = """\
# Local Dagster instance of retraining_assets (SQLite under this folder).
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 4
    # at most one retraining run per pipeline at a time: drift, volume, performance and the
    # schedule queue behind each other instead of training twice
    tag_concurrency_limits:
      - key: "retraining_assets/retraining"
        value:
          applyLimitPerUniqueValue: true
        limit: 1
"""


def prepare_dagster_home(settings: Settings) -> Path:
    """Point Dagster at the project-local instance (unless DAGSTER_HOME is already set)."""
    home = settings.dagster_home
    try:
        home.mkdir(parents=True, exist_ok=True)
        if not (home / "dagster.yaml").exists():
            (home / "dagster.yaml").write_text(LOCAL_INSTANCE_YAML)
    except OSError as error:  # RETRAIN_HOME itself was checked with the settings
        variable = "DAGSTER_HOME" if os.environ.get("DAGSTER_HOME") else "RETRAIN_HOME"
        fail(f"cannot set up the Dagster instance in {home} ({variable}): {error.strerror}")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


pipeline_option = click.option(
    "--pipeline", "pipeline_name", default=None, help="Pipeline name (default: yours, else demo)."
)


@dataclass
class Context:
    """What the model commands share: the settings and the pipeline's name. Nothing here opens
    a record source: these commands must work while one is down."""

    settings: Settings
    name: str

    @classmethod
    def open(cls, pipeline_name: str | None) -> Context:
        settings = cli_settings()  # first: a bad setting is reported before the model stack loads
        from retraining_assets.core.pipeline import configured_pipeline_names

        names = configured_pipeline_names(settings)
        name = pipeline_name or names[-1]
        if name not in names:
            fail(f"unknown pipeline '{name}'; configured: {', '.join(names)}")
        return cls(settings, name)

    @cached_property
    def pipeline(self) -> Pipeline:
        """The whole pipeline, for commands that need its settings or spec: this opens (and,
        for your own pipeline, reads) its record source."""
        from retraining_assets.core.pipeline import demo_pipeline, user_pipeline

        return demo_pipeline(self.settings) if self.name == "demo" else user_pipeline(self.settings)

    @cached_property
    def registry(self) -> Registry:
        from retraining_assets.core.registry import Registry

        return Registry.from_settings(self.settings)

    def notifier(self) -> Notifier:
        from retraining_assets.core.notify import Notifier

        return Notifier.from_settings(self.settings)

    def after_change(self, move: AliasMove) -> None:
        """Refresh the reference and tell Dagster, so the UI never shows a stale champion
        (should this process die first, the champion sync sensor catches up)."""
        import dagster as dg

        from retraining_assets.core.reference import ReferenceStore
        from retraining_assets.defs.materializations import champion_materializations

        prepare_dagster_home(self.settings)
        instance = dg.DagsterInstance.get()
        store = ReferenceStore(self.settings.artifact_path)
        for event in champion_materializations(
            self.name, self.registry, store, move, "retrain CLI"
        ):
            instance.report_runless_asset_event(event)
        click.echo(f"{self.name}: champion is v{move.version} (was v{move.previous_version}).")


def actor(by: str) -> Actor:
    from retraining_assets.core.registry import Actor, actual_identity

    return Actor(by=by, actual_user=actual_identity())


def _who(_context: click.Context, parameter: click.Parameter, value: str) -> str:
    """``--by`` and ``--reason`` name a person and a cause: blank is refused, not recorded."""
    if not value.strip():
        fail(f"--{parameter.name} must not be empty or blank: the audit log records it")
    return value.strip()


def by_option(verb: str):
    return click.option(
        "--by", required=True, callback=_who, help=f"Who {verb} (recorded in the audit log)."
    )


reason_option = click.option(
    "--reason", required=True, callback=_who, help="Why (recorded in the audit log)."
)


def guarded(action):
    """Run a registry action, turning a refusal into one clear line and exit status 2."""
    from retraining_assets.core.registry import RegistryError

    try:
        return action()
    except (RegistryError, LookupError) as error:
        fail(str(error))


def cli_settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as error:
        fail(str(error))


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)
