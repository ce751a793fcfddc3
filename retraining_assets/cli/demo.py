"""``retrain demo``: the whole loop on the seeded demo stream, month by month, through a real
Dagster instance; with ``--serve``, also live traffic through the prediction service.

Registered in ``cli/__init__.py``.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click
import pandas as pd

from retraining_assets.cli.common import cli_settings as _settings
from retraining_assets.cli.common import prepare_dagster_home
from retraining_assets.cli.serve import chunk_option
from retraining_assets.settings import Settings

if TYPE_CHECKING:
    from retraining_assets.demo.simulation import PeriodOutcome, TrafficOutcome
    from retraining_assets.service.server import LocalService

# months pass in seconds here: a step needs only this many outcomes per arm (unless
# RETRAIN_ROLLOUT_MIN_SAMPLES says otherwise), so a rollout runs its course within a month
DEMO_ROLLOUT_MIN_SAMPLES = 100


@click.command()
@click.option("--months", default=None, type=int, help="Months in the demo stream (default 27).")
@click.option("--rows", default=None, type=int, help="Records per month (default 5,000).")
@click.option(
    "--serve",
    is_flag=True,
    help="Replay each month's records through the prediction service first (in this process, "
    "over HTTP), so a candidate that passes the gate rolls out gradually on live traffic.",
)
@chunk_option("With --serve: records per replayed batch; the rollout is judged after each.")
def demo(months: int | None, rows: int | None, serve: bool, chunk: int) -> None:
    """Seed the demo stream and run the whole loop month by month through a real Dagster
    instance: monitoring, the retraining sensor, training, evaluation and the promotion gate.

    With --serve, the prediction service answers each month's records before they land
    (predictions, then their true outcomes), and the rollout sensor judges the rollout after
    every batch: it advances step by step, promotes the challenger or rolls it back.
    """
    import dagster as dg
    from tqdm import tqdm

    from retraining_assets.core.database import platform_engine
    from retraining_assets.core.demo import DemoStream
    from retraining_assets.core.pipeline import demo_pipeline
    from retraining_assets.core.registry import CHAMPION, Registry
    from retraining_assets.definitions import build_definitions
    from retraining_assets.defs.factory import partitions_for
    from retraining_assets.demo.simulation import Simulation
    from retraining_assets.service.server import local_service

    started = time.monotonic()
    settings = demo_settings(_settings(), serve)
    # notifications still reach the outbox and every channel; the terminal shows a count
    logging.getLogger("retraining_assets.core.notify").setLevel(logging.ERROR)
    home = prepare_dagster_home(settings)
    click.echo(f"State folder: {settings.home.resolve()} (Dagster instance: {home})")
    stream = DemoStream(
        **{k: v for k, v in {"months": months, "rows_per_month": rows}.items() if v is not None}
    )
    engine = platform_engine(settings.platform_database_url)
    present = stream.months_present(engine)
    click.echo(
        f"Demo stream: {stream.months} months from {stream.first_month:%Y-%m}; {present} already "
        "in the database, the others arrive one month at a time."
    )
    pipeline = demo_pipeline(settings, stream)
    registry = Registry.from_settings(settings)
    simulation = Simulation(
        build_definitions(settings, [pipeline]), pipeline, dg.DagsterInstance.get()
    )
    reference_end = pipeline.reference_window()[1]  # the first whole training window
    stream.seed_database(engine, through=stream.offset_of(reference_end - timedelta(seconds=1)))
    simulation.refresh_reference()
    if serve:
        click.echo(
            f"Live traffic: {settings.promotion_strategy} rollouts through steps "
            f"{', '.join(f'{s:.0%}' for s in settings.rollout_steps)}, each after "
            f"{settings.rollout_min_samples} outcomes per arm, judged every {chunk:,} records."
        )
    rows_out = []
    keys = partitions_for(pipeline).get_partition_keys()
    service: LocalService | None = None  # started once there is a champion to serve
    with ExitStack() as running, tqdm(keys, desc="months", unit="month") as progress:
        for key in progress:
            progress.set_postfix_str(key)
            period_started = time.monotonic()
            offset = stream.offset_of(key)
            if serve and service is None and registry.get_alias(pipeline.name, CHAMPION):
                service = running.enter_context(local_service(pipeline))
                progress.write(f"Prediction service: {service.url} (API docs: {service.url}/docs)")
            traffic = None
            if service is not None:
                traffic = simulation.traffic(service, stream.generate(offset), chunk)
            stream.seed_database(engine, through=offset)  # the month's labels land
            outcome = simulation.period(key)
            row = summary_row(outcome)
            if serve:
                row |= traffic_columns(traffic)
            rows_out.append(row | {"s": round(time.monotonic() - period_started)})
    with pd.option_context("display.max_colwidth", 60, "display.width", 250):
        click.echo(pd.DataFrame(rows_out).to_string(index=False))
    _print_notifications(engine)
    click.echo(f"Done in {time.monotonic() - started:.0f} s. Open the UI with `make dev`.")


def demo_settings(settings: Settings, serve: bool) -> Settings:
    """The settings of a demo, where months pass in seconds: no retrain cooldown; with live
    traffic, gradual rollouts (unless another rollout strategy is set) whose steps need no
    minimum time, and a service that follows every rollout change at once."""
    update: dict[str, Any] = {"retrain_cooldown_hours": 0.0}
    if serve:
        update |= {"rollout_min_hours": 0.0, "serve_refresh_seconds": 0.0}
        if settings.promotion_strategy == "immediate":
            update["promotion_strategy"] = "gradual"
        if "rollout_min_samples" not in settings.model_fields_set:
            update["rollout_min_samples"] = DEMO_ROLLOUT_MIN_SAMPLES
    return settings.model_copy(update=update)


def summary_row(outcome: PeriodOutcome) -> dict[str, object]:
    """One line of the demo's table: the month's data, drift, trigger and gate."""
    from retraining_assets.defs.assets.promotion import GATE

    # the promotion gate not passing is a decision, shown in its own column
    failed = [name for name, passed in outcome.checks.items() if not passed and name != GATE]
    evaluation = "model_evaluation"
    decision = outcome.value(evaluation, "decision", "-")
    moved = outcome.value("champion_model", "version")
    if moved is not None:
        decision = f"{decision} -> v{moved}"
    elif outcome.value("traffic_split", "status") == "active":  # a rollout started
        version = outcome.value("traffic_split", "challenger_version")
        share = outcome.value("traffic_split", "share")
        decision = f"{decision} -> rollout v{version} at {share:.0%}"
    return {
        "month": outcome.partition[:7],
        "records": outcome.value("current_data", "dagster/row_count", 0),
        "failed checks": ", ".join(failed) or "-",
        "drifted": ", ".join(outcome.value("drift_report", "drifted_features", [])) or "-",
        "retrain because": outcome.retrain_causes or "-",
        "best candidate": _scored(
            outcome.value(evaluation, "best_candidate"),
            outcome.value(evaluation, "candidate_value"),
        ),
        "champion": _scored("", outcome.value(evaluation, "champion_value")),
        "lift": outcome.value(evaluation, "lift", "-"),
        "decision": decision,
    }


def traffic_columns(traffic: TrafficOutcome | None) -> dict[str, object]:
    """The live-traffic columns: requests served (and correct) per model version, and the
    rollout's traffic changes ("v7: 25% -> 50% -> 100% -> promoted")."""
    if traffic is None:
        return {"served (correct)": "no model yet", "rollout": "-"}
    replayed = traffic.replayed
    served = ", ".join(
        f"v{version} {count:,} ({replayed.correct[version] / count:.0%})"
        for version, count in sorted(replayed.served.items())
    )
    steps: dict[int, list[str]] = {}
    for version, change in traffic.changes:
        steps.setdefault(version, []).append(change)
    rollout = "; ".join(f"v{version}: {' -> '.join(s)}" for version, s in steps.items())
    return {"served (correct)": served, "rollout": rollout or "-"}


def _scored(name: str | None, value: object) -> str:
    if not isinstance(value, float):
        return "-" if name is None else (name or "-")
    return f"{name} {value:.3f}".strip()


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
