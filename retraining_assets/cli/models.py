"""``retrain approve``, ``reject``, ``rollback`` and ``status``: the production model, through
``core.lifecycle`` (audited transactions, administrators notified first)."""

from __future__ import annotations

import json

import click

from retraining_assets.cli.common import (
    Context,
    actor,
    guarded,
    pipeline_option,
    prepare_dagster_home,
)


@click.command()
@click.argument("version", type=int)
@click.option("--by", required=True, help="Who approves (recorded in the audit log).")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@pipeline_option
def approve(version: int, by: str, reason: str, pipeline_name: str | None) -> None:
    """Approve a candidate that waits for a person: it becomes the champion."""
    from retraining_assets.core import lifecycle  # the model stack: only when needed

    context = Context.open(pipeline_name)
    move = guarded(lambda: lifecycle.approve(
        context.registry, context.notifier(), context.pipeline.name, version,
        actor=actor(by), reason=reason,
    ))  # fmt: skip
    context.after_change(move)


@click.command()
@click.argument("version", type=int)
@click.option("--by", required=True, help="Who rejects (recorded in the audit log).")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@pipeline_option
def reject(version: int, by: str, reason: str, pipeline_name: str | None) -> None:
    """Reject a candidate that waits for a person: the champion stays."""
    from retraining_assets.core import lifecycle  # the model stack: only when needed

    context = Context.open(pipeline_name)
    guarded(lambda: lifecycle.reject(
        context.registry, context.pipeline.name, version, actor=actor(by), reason=reason
    ))  # fmt: skip
    click.echo(f"{context.pipeline.name}: v{version} rejected; the champion stays.")


@click.command()
@click.option("--to", "to_version", type=int, default=None, help="Version to restore.")
@click.option("--by", required=True, help="Who rolls back (recorded in the audit log).")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@pipeline_option
def rollback(to_version: int | None, by: str, reason: str, pipeline_name: str | None) -> None:
    """Roll back what is live: an active rollout (all traffic back to the champion), else the
    champion (to --to, default: the champion before this one)."""
    from retraining_assets.core.lifecycle import rollback_live
    from retraining_assets.core.rollout.transitions import Rollout

    context = Context.open(pipeline_name)
    undone = guarded(lambda: rollback_live(
        context.registry, context.notifier(), context.pipeline.name,
        to_version=to_version, actor=actor(by), reason=reason,
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


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pipeline_option
def status(as_json: bool, pipeline_name: str | None) -> None:
    """The champion, its metrics and age, the active rollout, pending approvals, decisions and
    alias history."""
    from retraining_assets.core import lifecycle  # the model stack: only when needed
    from retraining_assets.core.rollout.transitions import active_rollout

    context = Context.open(pipeline_name)
    report = lifecycle.status(context.registry, context.pipeline.name)
    rollout = active_rollout(context.registry, context.pipeline.name)
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
