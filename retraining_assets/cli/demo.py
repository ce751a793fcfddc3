"""``retrain demo``: the whole loop on the seeded demo stream, period by period at simulated
time, through a real Dagster instance; with ``--serve``, also live traffic through the
prediction service; with ``--export-stream``, only the stream and its events, written out.

Registered in ``cli/__init__.py``.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import pandas as pd

from retraining_assets.cli.common import cli_settings as _settings
from retraining_assets.cli.common import prepare_dagster_home
from retraining_assets.cli.serve import chunk_option
from retraining_assets.core.demo import TIME_COLUMN, DemoStream
from retraining_assets.settings import Settings, load_settings

if TYPE_CHECKING:
    from retraining_assets.core.pipeline import Pipeline
    from retraining_assets.service.server import LocalService

# months pass in seconds here: a step needs only this many outcomes per arm (unless
# RETRAIN_ROLLOUT_MIN_SAMPLES says otherwise), so a rollout runs its course within a month
DEMO_ROLLOUT_MIN_SAMPLES = 100
WIDTH, WIDE = 120, 200  # the table's width; with --serve's two traffic columns


@click.command()
@click.option("--months", default=None, type=int, help="Months in the demo stream (default 27).")
@click.option("--rows", default=None, type=int, help="Records per month (default 5,000).")
@click.option(
    "--serve",
    is_flag=True,
    help="Replay each period's records through the prediction service first (in this process, "
    "over HTTP), so a candidate that passes the gate rolls out gradually on live traffic.",
)
@chunk_option("With --serve: records per replayed batch; the rollout is judged after each.")
@click.option(
    "--export-stream",
    "export_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Only write the demo's records to this CSV file and its ground-truth events beside "
    "it (FILE.events.json), then exit: no Dagster run.",
)
def demo(
    months: int | None, rows: int | None, serve: bool, chunk: int, export_path: Path | None
) -> None:
    """Seed the demo stream and run the whole loop period by period (weekly unless
    RETRAIN_PARTITION says otherwise) through a real Dagster instance, at simulated time:
    the retraining schedule, monitoring, the retraining sensor, training, evaluation and the
    promotion gate.

    With --serve, the prediction service answers each period's records before they land
    (predictions, then their true outcomes), and the rollout sensor judges the rollout after
    every batch: it advances step by step, promotes the challenger or rolls it back.
    """
    from retraining_assets.core.demo import DemoStream

    stream = DemoStream(
        **{k: v for k, v in {"months": months, "rows_per_month": rows}.items() if v is not None}
    )
    if export_path is not None:
        try:
            records, events = stream.export(export_path)  # core/demo.py writes both files
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--export-stream") from None
        click.echo(f"Wrote {records} ({stream.months} months) and {events}.")
        return
    run_demo(stream, serve, chunk)


def run_demo(stream: DemoStream, serve: bool, chunk: int) -> None:
    import dagster as dg
    from tqdm import tqdm

    from retraining_assets.core.database import platform_engine
    from retraining_assets.core.pipeline import demo_pipeline
    from retraining_assets.core.registry import CHAMPION, Registry
    from retraining_assets.demo.report import (
        event_onsets,
        eventful,
        format_table,
        reactions,
        summary_row,
        traffic_columns,
    )
    from retraining_assets.demo.simulation import Simulation
    from retraining_assets.service.server import local_service

    started = time.monotonic()
    settings = demo_settings(_settings(), serve, stream)  # a bad setting stops here, first
    # importing the code location reads the settings again (its module-level definitions)
    from retraining_assets.definitions import build_definitions

    # notifications still reach the outbox and every channel; the terminal shows a count
    logging.getLogger("retraining_assets.core.notify").setLevel(logging.ERROR)
    home = prepare_dagster_home(settings)
    click.echo(f"State folder: {settings.home.resolve()} (Dagster instance: {home})")
    engine = platform_engine(settings.platform_database_url)
    present = stream.months_present(engine)
    pipeline = demo_pipeline(settings, stream)
    scales = pipeline.timescales
    click.echo(
        f"Demo stream: {stream.months} months from {stream.first_month:%Y-%m}; {present} already "
        f"in the database, the others arrive as time passes. Monitoring period: "
        f"{scales.period}, drift window {scales.drift_window} periods, training window "
        f"{scales.training_window}, retraining schedule {scales.schedule}."
    )
    registry = Registry.from_settings(settings)
    simulation = Simulation(
        build_definitions(settings, [pipeline]), pipeline, dg.DagsterInstance.get()
    )
    reference_end = pipeline.reference_window()[1]
    stream.seed_database(engine, through=stream.offset_of(reference_end - timedelta(seconds=1)))
    simulation.refresh_reference()
    if serve:
        click.echo(
            f"Live traffic: {settings.promotion_strategy} rollouts through steps "
            f"{', '.join(f'{s:.0%}' for s in settings.rollout_steps)}, each after "
            f"{settings.rollout_min_samples} outcomes per arm, judged every {chunk:,} records."
        )
    periods = demo_periods(pipeline, stream)
    outcomes, rows_out = [], []
    service: LocalService | None = None  # started once there is a champion to serve
    with ExitStack() as running, tqdm(periods, desc=f"{scales.period} periods") as progress:
        for start in progress:
            key = scales.label(start)
            progress.set_postfix_str(key)
            period_started = time.monotonic()
            end = scales.period_end(start)
            if serve and service is None and registry.get_alias(pipeline.name, CHAMPION):
                service = running.enter_context(local_service(pipeline))
                progress.write(f"Prediction service: {service.url} (API docs: {service.url}/docs)")
            traffic = None
            if service is not None:
                traffic = simulation.traffic(service, stream_records(stream, start, end), chunk)
            # the period's labels land (whole months: no window reads past its own end)
            stream.seed_database(engine, through=stream.offset_of(end - timedelta(seconds=1)))
            outcome = simulation.period(key)
            outcomes.append(outcome)
            if eventful(outcome) or (traffic is not None and traffic.replayed.served):
                row = summary_row(outcome)
                if serve:
                    row |= traffic_columns(traffic)
                rows_out.append(row | {"s": str(round(time.monotonic() - period_started))})
    click.echo(
        f"{len(periods)} {scales.period} periods; the {len(rows_out)} in which something "
        "happened (a trigger, a training, a decision, a failed blocking check):"
    )
    click.echo(format_table(rows_out, width=WIDE if serve else WIDTH))
    click.echo("Reaction to the stream's ground-truth events (days of simulated time):")
    for reaction in reactions(outcomes, event_onsets(stream)):
        click.echo(f"  {reaction.line()}")
    _print_notifications(engine)
    click.echo(f"Done in {time.monotonic() - started:.0f} s. Open the UI with `make dev`.")


def demo_settings(settings: Settings, serve: bool, stream: DemoStream | None = None) -> Settings:
    """The settings of a demo, where months pass in seconds but every moment is simulated
    (the cooldown too): weekly monitoring periods with a two-week drift window unless set,
    and a volume trigger of a month of demo records unless set, so the 27 months fit the
    10-minute budget; with live traffic, gradual rollouts (unless another rollout strategy
    is set) whose steps need no minimum time, and a service that follows every rollout change
    at once."""
    from retraining_assets.core.pipeline import demo_defaults

    settings = demo_defaults(settings, stream)
    chosen = settings.model_fields_set
    update: dict[str, Any] = {}
    if serve:
        update |= {"rollout_min_hours": 0.0, "serve_refresh_seconds": 0.0}
        if settings.promotion_strategy == "immediate":
            update["promotion_strategy"] = "gradual"
        if "rollout_min_samples" not in chosen:
            update["rollout_min_samples"] = DEMO_ROLLOUT_MIN_SAMPLES
    return load_settings(**(settings.model_dump(include=chosen) | update))


def demo_periods(pipeline: Pipeline, stream: DemoStream) -> list[datetime]:
    """The starts of the monitoring periods that end within the stream."""
    scales = pipeline.timescales
    end = stream.month_start(stream.months).to_pydatetime()
    return [s for s in scales.periods(pipeline.data_start, end) if scales.period_end(s) <= end]


def stream_records(stream: DemoStream, start: datetime, end: datetime) -> pd.DataFrame:
    """The demo records of ``[start, end)``, generated from their months."""
    first, last = stream.offset_of(start), stream.offset_of(end - timedelta(seconds=1))
    frame = pd.concat([stream.generate(offset) for offset in range(first, last + 1)])
    times = frame[TIME_COLUMN]
    return frame[(times >= start) & (times < end)].reset_index(drop=True)


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
