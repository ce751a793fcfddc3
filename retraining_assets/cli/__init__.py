"""The ``retrain`` command: the demo, data validation, and (growing) operations on the state
shared with the Dagster UI (same ``RETRAIN_HOME`` / database URL)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import click

from retraining_assets.core.database import DatabaseError
from retraining_assets.core.dataset import DatasetError, DatasetSpec
from retraining_assets.core.sources import SourceError, read_table
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
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(LOCAL_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@click.group()
def main() -> None:
    """Keep production ML models fresh: drift, retraining, promotion, notification, rollout."""


@main.command()
@click.option("--data", "path", required=True, type=click.Path(), help="CSV, CSV.gz or Parquet.")
@click.option("--time-column", required=True, help="The timestamp column.")
@click.option("--target", required=True, help="The target (label) column.")
@click.option("--task", type=click.Choice(["binary", "multiclass", "regression"]), default=None)
@click.option("--drop", multiple=True, help="A column that must not be a feature (repeatable).")
def validate(
    path: str, time_column: str, target: str, task: str | None, drop: tuple[str, ...]
) -> None:
    """Check a file against an inferred DatasetSpec and print every problem found.

    Exit status 0 when the file is usable, 1 when it is not.
    """
    try:
        frame = read_table(path)
        spec = DatasetSpec.infer(frame, time_column, target, task=task, drop=list(drop))
    except (SourceError, DatasetError) as error:
        _fail(str(error))
    click.echo(f"{path}: {len(frame):,} rows, {frame.shape[1]} columns")
    click.echo(f"  time column          {spec.time_column}")
    click.echo(
        f"  target               {spec.target} ({spec.task}"
        + (f", classes {list(spec.classes)})" if spec.classes else ")")
    )
    click.echo(f"  numeric features     {', '.join(spec.numeric_features) or '-'}")
    click.echo(f"  categorical features {', '.join(spec.categorical_features) or '-'}")
    ignored = sorted(set(frame.columns) - set(spec.columns))
    if ignored:
        click.echo(f"  ignored columns      {', '.join(ignored)}")
    problems = spec.problems(frame)
    if not problems:
        times = spec.check(frame)[spec.time_column]
        months = times.dt.to_period("M").nunique()
        click.echo(f"  time span            {times.min()} to {times.max()} ({months} months)")
        click.echo("Usable: no problems found.")
        return
    click.echo(f"{len(problems)} problem(s):")
    for problem in problems:
        click.echo(f"  - {problem}")
    sys.exit(1)


@main.command()
@click.argument("reference", type=click.Path())
@click.argument("current", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON only.")
@click.option("--html", "html", type=click.Path(), default=None, help="Write the HTML report.")
@click.option("--png", "png", type=click.Path(), default=None, help="Write the summary plot.")
@click.option("--target", default=None, help="Label column: compared as target drift.")
@click.option("--drop", multiple=True, help="A column not to compare, e.g. an id (repeatable).")
def drift(
    reference: str,
    current: str,
    as_json: bool,
    html: str | None,
    png: str | None,
    target: str | None,
    drop: tuple[str, ...],
) -> None:
    """Compare CURRENT with REFERENCE (CSV, CSV.gz or Parquet files) with the drift engine.

    Exit status 0 without dataset drift, 1 with it, 2 when the files cannot be compared.
    """
    from retraining_assets.core.drift import DriftInputError, drift_between_files
    from retraining_assets.core.pipeline import drift_thresholds

    settings = _settings()
    thresholds = drift_thresholds(settings)
    try:
        report = drift_between_files(
            reference, current, drop=drop, thresholds=thresholds, target_column=target
        )
    except (DriftInputError, SourceError) as error:
        _fail(str(error))
    if html:
        report.to_html(html)
    if png:
        report.plot_summary(png)
    if as_json:
        click.echo(report.to_json())
    else:
        click.echo(report.to_markdown())
        verdict = (
            "DRIFT in " + ", ".join(report.drifted_features) if report.dataset_drift else "no drift"
        )
        click.echo(
            f"\n{verdict} ({report.n_reference:,} reference rows, {report.n_current:,} current)"
        )
    sys.exit(1 if report.dataset_drift else 0)


@main.command()
@click.option("--data", "path", required=True, type=click.Path(), help="CSV, CSV.gz or Parquet.")
@click.option("--time-column", required=True, help="The timestamp column.")
@click.option("--target", required=True, help="The target (label) column.")
@click.option(
    "--period",
    type=click.Choice(["month", "week", "day"]),
    default="month",
    show_default=True,
    help="Monitoring period: each is scored, then the triggers are evaluated.",
)
@click.option("--window", type=int, default=3, show_default=True, help="Periods per training.")
@click.option(
    "--window-days", type=int, default=None, help="Training window in days (instead of --window)."
)
@click.option(
    "--drift-window",
    type=int,
    default=None,
    help="Drift (and live metric) over this many trailing periods, widened to "
    "RETRAIN_DRIFT_MIN_RECORDS records. Default: the period alone.",
)
@click.option("--families", default="xgboost", show_default=True, help="Comma-separated.")
@click.option("--drop", multiple=True, help="A column that must not be a feature (repeatable).")
@click.option(
    "--schedule",
    type=click.Choice(["monthly", "none"]),
    default="none",
    show_default=True,
    help="auto also retrains on the monthly schedule (the monthly policy always does).",
)
@click.option("--json", "json_out", type=click.Path(), default=None, help="Write the JSON here.")
@click.option("--plot", "plot_out", type=click.Path(), default=None, help="Write the PNG here.")
def backtest(
    path: str,
    time_column: str,
    target: str,
    period: str,
    window: int,
    window_days: int | None,
    drift_window: int | None,
    families: str,
    drop: tuple[str, ...],
    schedule: str,
    json_out: str | None,
    plot_out: str | None,
) -> None:
    """Replay a dataset period by period through the same trigger, training, evaluation and
    promotion code: `auto` (every trigger), `monthly` (the schedule alone), and the `static`
    and `always` baselines."""
    from tqdm import tqdm

    from retraining_assets.core.backtest import BacktestError, backtest_file

    with tqdm(desc="periods", unit="period") as bar:

        def progress(done: int, total: int, message: str) -> None:
            bar.total = total
            bar.set_postfix_str(message[:40])
            bar.update(done - bar.n)

        try:
            result = backtest_file(
                path, time_column, target, drop=drop, period=period, window=window,
                window_days=window_days, drift_window=drift_window,
                families=[f.strip() for f in families.split(",") if f.strip()],
                settings=_settings(), schedule=schedule, progress=progress,
            )  # fmt: skip
        except BacktestError as error:
            _fail(str(error))
    click.echo(result.summary())
    if json_out:
        Path(json_out).write_text(result.to_json())
    if plot_out:
        result.plot(plot_out)


@main.command("notify-test")
def notify_test_command() -> None:
    """Send a test message through every configured channel and say which worked."""
    from retraining_assets.core.notify import notify_test

    results = notify_test(_settings())
    for result in results:
        status = "ok" if result.ok else f"FAILED: {result.error}"
        click.echo(f"  {result.channel:<8} {status}")
    if not all(result.ok for result in results):
        sys.exit(1)


# --- the production model: approve, reject, rollback, status --------------------------------
pipeline_option = click.option(
    "--pipeline", "pipeline_name", default=None, help="Pipeline name (default: yours, else demo)."
)


@main.command()
def init() -> None:
    """Create the state folder and the local Dagster instance (what `make dev` starts on)."""
    settings = _settings()
    click.echo(prepare_dagster_home(settings))


@dataclass
class Context:
    """What the model commands share: the settings and the pipeline's name. Nothing here opens
    a record source: these commands must work while one is down."""

    settings: Settings
    name: str

    @classmethod
    def open(cls, pipeline_name: str | None) -> Context:
        from retraining_assets.core.pipeline import configured_pipeline_names

        settings = _settings()
        names = configured_pipeline_names(settings)
        name = pipeline_name or names[-1]
        if name not in names:
            _fail(f"unknown pipeline '{name}'; configured: {', '.join(names)}")
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
        from retraining_assets.defs.operations import champion_materializations

        prepare_dagster_home(self.settings)
        instance = dg.DagsterInstance.get()
        store = ReferenceStore(self.settings.artifact_path)
        for event in champion_materializations(
            self.name, self.registry, store, move, "retrain CLI"
        ):
            instance.report_runless_asset_event(event)
        click.echo(f"{self.name}: champion is v{move.version} (was v{move.previous_version}).")


def _actor(by: str) -> Actor:
    from retraining_assets.core.registry import Actor, actual_identity

    return Actor(by=by, actual_user=actual_identity())


def _who(_context: click.Context, parameter: click.Parameter, value: str) -> str:
    """``--by`` and ``--reason`` name a person and a cause: blank is refused, not recorded."""
    if not value.strip():
        _fail(f"--{parameter.name} must not be empty or blank: the audit log records it")
    return value.strip()


def by_option(verb: str):
    return click.option(
        "--by", required=True, callback=_who, help=f"Who {verb} (recorded in the audit log)."
    )


reason_option = click.option(
    "--reason", required=True, callback=_who, help="Why (recorded in the audit log)."
)


@main.command()
@click.argument("version", type=int)
@by_option("approves")
@reason_option
@pipeline_option
def approve(version: int, by: str, reason: str, pipeline_name: str | None) -> None:
    """Approve a candidate that waits for a person: it becomes the champion."""
    context = Context.open(pipeline_name)
    move = _guarded(lambda: _lifecycle().approve(
        context.registry, context.notifier(), context.name, version,
        actor=_actor(by), reason=reason,
    ))  # fmt: skip
    context.after_change(move)


@main.command()
@click.argument("version", type=int)
@by_option("rejects")
@reason_option
@pipeline_option
def reject(version: int, by: str, reason: str, pipeline_name: str | None) -> None:
    """Reject a candidate that waits for a person: the champion stays."""
    context = Context.open(pipeline_name)
    _guarded(lambda: _lifecycle().reject(
        context.registry, context.name, version, actor=_actor(by), reason=reason
    ))  # fmt: skip
    click.echo(f"{context.name}: v{version} rejected; the champion stays.")


@main.command()
@click.option("--to", "to_version", type=int, default=None, help="Version to restore.")
@by_option("rolls back")
@reason_option
@pipeline_option
def rollback(to_version: int | None, by: str, reason: str, pipeline_name: str | None) -> None:
    """Roll back what is live: an active rollout (all traffic back to the champion), else the
    champion (to --to, default: the champion before this one)."""
    from retraining_assets.core.lifecycle import rollback_live
    from retraining_assets.core.rollout.transitions import Rollout

    context = Context.open(pipeline_name)
    undone = _guarded(lambda: rollback_live(
        context.registry, context.notifier(), context.name,
        to_version=to_version, actor=_actor(by), reason=reason,
    ))  # fmt: skip
    if not isinstance(undone, Rollout):
        context.after_change(undone)
        return
    import dagster as dg

    from retraining_assets.defs.operations import traffic_materialization

    prepare_dagster_home(context.settings)
    dg.DagsterInstance.get().report_runless_asset_event(
        traffic_materialization(undone, reason, f"{by} (retrain CLI)")
    )
    click.echo(
        f"{undone.pipeline}: rollout {undone.id} of v{undone.challenger_version} rolled back; "
        f"champion v{undone.champion_version} serves all traffic."
    )


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pipeline_option
def status(as_json: bool, pipeline_name: str | None) -> None:
    """The champion, its metrics and age, the active rollout, pending approvals, decisions and
    alias history."""
    from retraining_assets.core.rollout.transitions import active_rollout

    context = Context.open(pipeline_name)
    report = _lifecycle().status(context.registry, context.name)
    rollout = active_rollout(context.registry, context.name)
    report["rollout"] = None if rollout is None else rollout.to_dict()
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    champion = report["champion"]
    if champion is None:
        click.echo(f"{report['pipeline']}: no champion yet")
    else:
        valid = champion["metrics"].get("valid", {})
        shown = ", ".join(f"{k} {v:.4f}" for k, v in valid.items() if v is not None)
        click.echo(f"{report['pipeline']}: champion v{champion['version']} ({champion['family']}), "
                   f"promoted {champion['promoted_at']}; validation: {shown}")  # fmt: skip
    if rollout is not None:
        since = f"{rollout.step_started_at:%Y-%m-%d %H:%M} UTC"
        click.echo(f"  rollout {rollout.id}: v{rollout.challenger_version} at {rollout.share:.1%} "
                   f"of the traffic, {rollout.plan.strategy} step {rollout.step + 1}/"
                   f"{len(rollout.plan.steps)} since {since} (started by {rollout.started_by}: "
                   f"{rollout.reason})")  # fmt: skip
    for pending in report["pending_approvals"]:
        decision = pending["decision"]
        click.echo(f"  pending approval: v{pending['version']} ({decision.get('reason')})")
    for move in report["alias_history"][-10:]:
        was = f"v{move['previous_version']}" if move["previous_version"] else "none"
        click.echo(
            f"  {move['at']} {move['action']:<8} {move['alias']} -> v{move['version']} "
            f"(was {was}) by {move['by']}: {move['reason']}"
        )


@main.command("sign-artifacts")
@click.option(
    "--previous-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The key file the artifacts were signed with before a key rotation.",
)
@click.option(
    "--trust-unsigned",
    is_flag=True,
    help="Also sign versions registered before signing whose files still match their SHA-256.",
)
@by_option("signs")
@pipeline_option
def sign_artifacts(
    previous_key_file: Path | None, trust_unsigned: bool, by: str, pipeline_name: str | None
) -> None:
    """Sign every version's artifacts with the current key (RETRAIN_ARTIFACT_KEY or the key
    file): after a key rotation (--previous-key-file) or for versions registered before
    artifacts were signed (--trust-unsigned). Exit status 2 if any version was refused."""
    from retraining_assets.core.registry import ArtifactSigner

    context = Context.open(pipeline_name)
    actor = _actor(by)
    outcome = _guarded(lambda: context.registry.sign_artifacts(
        context.name,
        previous=ArtifactSigner.from_file(previous_key_file) if previous_key_file else None,
        trust_unsigned=trust_unsigned, by=actor.by, actual_user=actor.actual_user,
    ))  # fmt: skip
    for label, key in (("signed", "signed"), ("already signed", "current")):
        click.echo(f"{context.name}: {label}: {_versions(outcome[key])}")
    if outcome["refused"]:
        _fail(
            f"{context.name}: {_versions(outcome['refused'])} refused: their files fail "
            "their SHA-256 or signature under every key given; nothing was signed for them"
        )


def _versions(numbers: list[int]) -> str:
    return ", ".join(f"v{n}" for n in numbers) or "none"


def _lifecycle():
    from retraining_assets.core import lifecycle

    return lifecycle


def _guarded(action):
    """Run a registry action, turning a refusal into one clear line and exit status 2."""
    from retraining_assets.core.registry import RegistryError

    try:
        return action()
    except (RegistryError, LookupError) as error:
        _fail(str(error))


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        _fail(str(error))


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


# the groups in their own modules need `main`'s helpers
from retraining_assets.cli.demo import demo as demo_group  # noqa: E402
from retraining_assets.cli.rollout import rollout as rollout_group  # noqa: E402
from retraining_assets.cli.serve import replay, serve  # noqa: E402

main.add_command(demo_group)
main.add_command(rollout_group)
main.add_command(serve)
main.add_command(replay)


def run() -> None:
    """Entry point that turns expected errors into one clear line instead of a traceback."""
    try:
        main(standalone_mode=True)
    except (DatabaseError, SourceError, DatasetError) as error:
        _fail(str(error))


if __name__ == "__main__":
    run()
