"""``retrain rollout``: start, inspect and stop the rollout of a challenger.

Registered in ``cli/__init__.py``. The commands share the state of
the Dagster UI (same ``RETRAIN_HOME`` / database URL) and change it only through
``core.rollout.transitions`` (audited transactions, administrators notified first).
"""

from __future__ import annotations

import json
from typing import Any

import click

from retraining_assets.cli.common import Context, actor, fail, guarded, pipeline_option
from retraining_assets.core.strategies import STRATEGIES

rollout = click.Group("rollout", help="Roll a challenger out gradually: start, status, stop.")


def parse_shares(steps: str | None) -> list[float] | None:
    """``--steps 0.05,0.25,1.0`` as shares (None when not given)."""
    if steps is None:
        return None
    return [_share(text) for text in steps.split(",") if text.strip()] or None


def _share(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise click.UsageError(f"--steps: {text.strip()!r} is not a number") from None


@rollout.command()
@click.option("--challenger", "version", required=True, type=int, help="Version to roll out.")
@click.option("--strategy", required=True, type=click.Choice(STRATEGIES))
@click.option(
    "--steps", default=None, help="Challenger shares, e.g. 0.05,0.25,0.5,1.0 (canary, ab: one)."
)
@click.option("--min-hours", type=float, default=None, help="Minimum hours per step.")
@click.option("--min-samples", type=int, default=None, help="Minimum outcomes per arm and step.")
@click.option(
    "--salt",
    default=None,
    help="The router's hash salt, to reproduce an assignment elsewhere (default: a new one).",
)
@click.option("--by", required=True, help="Who starts it (recorded in the audit log).")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@pipeline_option
def start(
    version: int,
    strategy: str,
    steps: str | None,
    min_hours: float | None,
    min_samples: int | None,
    salt: str | None,
    by: str,
    reason: str,
    pipeline_name: str | None,
) -> None:
    """Start rolling a registered version out against the champion.

    The plan is built as for a candidate that passes the promotion gate (``RETRAIN_ROLLOUT_*``
    settings, the live metric of the pipeline's task); the options given override them."""
    from retraining_assets.core.pipeline import rollout_plan
    from retraining_assets.core.rollout import RolloutPlanError, transitions

    shares = parse_shares(steps)
    context = Context.open(pipeline_name)
    try:
        plan = rollout_plan(
            context.pipeline, strategy, steps=shares, min_hours=min_hours, min_samples=min_samples
        )
    except RolloutPlanError as error:
        fail(str(error))
    started = guarded(lambda: transitions.start_rollout(
        context.registry, context.notifier(), context.name, version, plan,
        actor=actor(by), reason=reason, salt=salt,
    ))  # fmt: skip
    click.echo(f"{started.pipeline}: rollout {started.id} started; {_describe(started)}")


@rollout.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pipeline_option
def status(as_json: bool, pipeline_name: str | None) -> None:
    """The active rollout: versions, strategy, step and traffic share."""
    from retraining_assets.core.rollout.transitions import active_rollout

    context = Context.open(pipeline_name)
    active = active_rollout(context.registry, context.name)
    if as_json:
        click.echo(json.dumps(None if active is None else active.to_dict(), indent=2))
    elif active is None:
        click.echo(f"{context.name}: no active rollout")
    else:
        click.echo(f"{active.pipeline}: rollout {active.id}; {_describe(active)}")
        click.echo(f"  started {active.started_at:%Y-%m-%d %H:%M} UTC by {active.started_by}: "
                   f"{active.reason}")  # fmt: skip


@rollout.command()
@click.option("--by", required=True, help="Who stops it (recorded in the audit log).")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@pipeline_option
def stop(by: str, reason: str, pipeline_name: str | None) -> None:
    """Stop the active rollout: all traffic goes back to the champion."""
    from retraining_assets.core.rollout import transitions

    context = Context.open(pipeline_name)
    registry = context.registry
    active = transitions.active_rollout(registry, context.name)
    if active is None:
        fail(f"pipeline '{context.name}' has no active rollout to stop")
    stopped = guarded(lambda: transitions.stop(
        registry, context.notifier(), active, actor=actor(by), reason=reason
    ))  # fmt: skip
    click.echo(
        f"{stopped.pipeline}: rollout {stopped.id} stopped; "
        f"v{stopped.champion_version} serves all traffic."
    )


def _describe(active: Any) -> str:
    plan = active.plan
    return (
        f"v{active.challenger_version} vs champion v{active.champion_version}, "
        f"{plan.strategy} step {active.step + 1}/{len(plan.steps)}, "
        f"challenger share {active.share:.1%}"
    )
