"""``retrain approve``, ``reject``, ``rollback``, ``status`` and ``sign-artifacts``: the
production model, through ``core.lifecycle`` and the registry (audited transactions,
administrators notified first)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from retraining_assets.cli.common import (
    Context,
    actor,
    by_option,
    fail,
    guarded,
    pipeline_option,
    prepare_dagster_home,
    reason_option,
)


@click.command()
@click.argument("version", type=int)
@by_option("approves")
@reason_option
@pipeline_option
def approve(version: int, by: str, reason: str, pipeline_name: str | None) -> None:
    """Approve a candidate that waits for a person: it becomes the champion."""
    from retraining_assets.core import lifecycle  # the model stack: only when needed

    context = Context.open(pipeline_name)
    move = guarded(lambda: lifecycle.approve(
        context.registry, context.notifier(), context.name, version,
        actor=actor(by), reason=reason,
    ))  # fmt: skip
    context.after_change(move)


@click.command()
@click.argument("version", type=int)
@by_option("rejects")
@reason_option
@pipeline_option
def reject(version: int, by: str, reason: str, pipeline_name: str | None) -> None:
    """Reject a candidate that waits for a person: the champion stays."""
    from retraining_assets.core import lifecycle  # the model stack: only when needed

    context = Context.open(pipeline_name)
    guarded(lambda: lifecycle.reject(
        context.registry, context.name, version, actor=actor(by), reason=reason
    ))  # fmt: skip
    click.echo(f"{context.name}: v{version} rejected; the champion stays.")


@click.command()
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
    undone = guarded(lambda: rollback_live(
        context.registry, context.notifier(), context.name,
        to_version=to_version, actor=actor(by), reason=reason,
    ))  # fmt: skip
    if not isinstance(undone, Rollout):
        context.after_change(undone)
        return
    import dagster as dg

    from retraining_assets.defs.materializations import traffic_materialization

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
    report = lifecycle.status(context.registry, context.name)
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


@click.command("sign-artifacts")
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
    who = actor(by)
    outcome = guarded(lambda: context.registry.sign_artifacts(
        context.name,
        previous=ArtifactSigner.from_file(previous_key_file) if previous_key_file else None,
        trust_unsigned=trust_unsigned, by=who.by, actual_user=who.actual_user,
    ))  # fmt: skip
    for label, key in (("signed", "signed"), ("already signed", "current")):
        click.echo(f"{context.name}: {label}: {_versions(outcome[key])}")
    if outcome["refused"]:
        fail(
            f"{context.name}: {_versions(outcome['refused'])} refused: their files fail "
            "their SHA-256 or signature under every key given; nothing was signed for them"
        )


def _versions(numbers: list[int]) -> str:
    return ", ".join(f"v{n}" for n in numbers) or "none"
