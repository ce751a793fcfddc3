"""The ``retrain`` command: the demo, data validation, and (growing) operations on the state
shared with the Dagster UI (same ``RETRAIN_HOME`` / database URL)."""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click
import pandas as pd

from retraining_assets.core.database import DatabaseError
from retraining_assets.core.dataset import DatasetError, DatasetSpec
from retraining_assets.core.pipeline import drift_thresholds
from retraining_assets.core.sources import SourceError, read_table
from retraining_assets.settings import Settings, SettingsError, load_settings

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
LOCAL_INSTANCE_YAML = """\
# Local Dagster instance of retraining_assets (SQLite under this folder).
telemetry:
  enabled: false
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


@dataclass
class PeriodSummary:
    partition: str
    rows: int
    failed_blocking: list[str]
    warnings: list[str]
    drifted: list[str]
    seconds: float

    @property
    def status(self) -> str:
        return "BLOCKED" if self.failed_blocking else "ok"


@main.command()
@click.option("--months", default=None, type=int, help="Months in the demo stream (default 27).")
@click.option("--rows", default=None, type=int, help="Records per month (default 5,000).")
def demo(months: int | None, rows: int | None) -> None:
    """Seed the demo stream and run the pipeline month by month through a real Dagster instance."""
    import dagster as dg
    from tqdm import tqdm

    from retraining_assets.core.database import platform_engine
    from retraining_assets.core.demo import DemoStream
    from retraining_assets.core.pipeline import demo_pipeline
    from retraining_assets.definitions import build_definitions
    from retraining_assets.defs.factory import partitions_for
    from retraining_assets.defs.jobs import monitoring_job_name, reference_job_name

    started = time.monotonic()
    settings = _settings()
    # notifications still reach the outbox and every channel; the terminal shows a count
    logging.getLogger("retraining_assets.core.notify").setLevel(logging.ERROR)
    home = prepare_dagster_home(settings)
    click.echo(f"State folder: {settings.home.resolve()} (Dagster instance: {home})")
    stream = DemoStream(
        **{k: v for k, v in {"months": months, "rows_per_month": rows}.items() if v is not None}
    )
    engine = platform_engine(settings.platform_database_url)
    inserted = stream.seed_database(engine)
    click.echo(
        f"Demo stream: {stream.months} months from {stream.first_month:%Y-%m}, "
        f"{len(inserted)} months inserted now, {stream.months - len(inserted)} already there."
    )
    pipeline = demo_pipeline(settings, stream)
    defs = build_definitions(settings, [pipeline])
    instance = dg.DagsterInstance.get()
    click.echo("Materializing reference_data ...")
    defs.resolve_job_def(reference_job_name(pipeline.name)).execute_in_process(
        instance=instance, run_config=QUIET_RUN_CONFIG
    )
    job = defs.resolve_job_def(monitoring_job_name(pipeline.name))
    summaries = []
    keys = partitions_for(pipeline).get_partition_keys()
    with tqdm(keys, desc="months", unit="month") as progress:
        for key in progress:
            progress.set_postfix_str(key)
            period_started = time.monotonic()
            result = job.execute_in_process(
                instance=instance,
                partition_key=key,
                run_config=QUIET_RUN_CONFIG,
                raise_on_error=False,
            )
            summaries.append(_summarise(result, key, time.monotonic() - period_started))
    _print_summary(summaries)
    _print_notifications(engine)
    click.echo(f"Done in {time.monotonic() - started:.0f} s. Open the UI with `make dev`.")


def _summarise(result, partition: str, seconds: float) -> PeriodSummary:
    rows, drifted = 0, []
    for event in result.get_asset_materialization_events():
        metadata = event.step_materialization_data.materialization.metadata
        if "dagster/row_count" in metadata:
            rows = int(metadata["dagster/row_count"].value)
        if "drifted_features" in metadata:
            drifted = list(metadata["drifted_features"].value)
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    blocking = [e.check_name for e in failed if e.severity.value == "ERROR"]
    warnings = [e.check_name for e in failed if e.severity.value != "ERROR"]
    return PeriodSummary(partition, rows, blocking, warnings, drifted, seconds)


def _print_summary(summaries: list[PeriodSummary]) -> None:
    table = pd.DataFrame(
        [
            {
                "month": s.partition[:7],
                "records": s.rows,
                "status": s.status,
                "blocking failures": ", ".join(s.failed_blocking) or "-",
                "warnings": ", ".join(s.warnings) or "-",
                "drifted features": ", ".join(s.drifted) or "-",
                "seconds": round(s.seconds, 1),
            }
            for s in summaries
        ]
    )
    click.echo(table.to_string(index=False))


def _print_notifications(engine) -> None:
    import sqlalchemy as sa

    from retraining_assets.core.schema import notification_outbox as outbox

    query = sa.select(outbox.c.event_type, outbox.c.status, sa.func.count()).group_by(
        outbox.c.event_type, outbox.c.status
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    if rows:
        counts = ", ".join(f"{count} {event} ({status})" for event, status, count in rows)
        click.echo(f"Notifications in the outbox: {counts}.")


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


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        _fail(str(error))


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def run() -> None:
    """Entry point that turns expected errors into one clear line instead of a traceback."""
    try:
        main(standalone_mode=True)
    except (DatabaseError, SourceError, DatasetError) as error:
        _fail(str(error))


if __name__ == "__main__":
    run()
