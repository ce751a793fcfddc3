"""Jobs a person launches from the Dagster UI (with config): approve, reject, roll back.

They call the same core functions as the ``retrain`` CLI; every champion change refreshes the
reference and is recorded as a materialization of ``champion_model`` and ``reference_data``,
and every traffic change as one of ``traffic_split``, so the UI never shows a stale state.
"""

from typing import Any

import dagster as dg

from retraining_assets.core import lifecycle
from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.reference import ReferenceStore, refresh_reference
from retraining_assets.core.registry import AliasMove, Registry
from retraining_assets.core.rollout.transitions import Rollout
from retraining_assets.core.sources import RecordSource
from retraining_assets.defs.identity import actor_of
from retraining_assets.defs.notifications import RESOURCE_KEY as NOTIFIER
from retraining_assets.defs.resources import PLATFORM


class ModelChange(dg.Config):
    """Who asks and why; the audit log records it with the identity that really ran it."""

    version: int | None = None  # approve/reject: required; rollback: default the previous one
    user: str
    reason: str


def champion_materializations(
    pipeline: Pipeline,
    registry: Registry,
    store: ReferenceStore,
    source: RecordSource,
    move: AliasMove,
    via: str,
) -> list[dg.AssetMaterialization]:
    """Refresh the reference for the new champion; what Dagster should record about it."""
    reference = refresh_reference(pipeline, registry, store, source)
    champion = registry.get_version(pipeline.name, move.version)
    return [
        dg.AssetMaterialization(
            asset_key=[pipeline.name, "champion_model"],
            metadata={
                "version": move.version,
                "family": champion.family,
                "previous_version": move.previous_version or 0,
                "action": move.action,
                "reason": move.reason,
                "changed_by": f"{move.by} ({via})",
            },
        ),
        dg.AssetMaterialization(
            asset_key=[pipeline.name, "reference_data"],
            metadata={
                "origin": reference.origin,
                "window": reference.window,
                "profile_hash": reference.profile.content_hash,
            },
        ),
    ]


def traffic_metadata(rollout: Rollout, reason: str, via: str) -> dict[str, Any]:
    """What ``traffic_split`` records about a rollout's live share."""
    return {
        "share": rollout.share,
        "status": rollout.status,
        "rollout_id": rollout.id,
        "step": f"{rollout.step + 1}/{len(rollout.plan.steps)}",
        "strategy": str(rollout.plan.strategy),
        "challenger_version": rollout.challenger_version,
        "champion_version": rollout.champion_version,
        "reason": reason,
        "changed_by": via,
    }


def traffic_materialization(rollout: Rollout, reason: str, via: str) -> dg.AssetMaterialization:
    """A traffic change made outside the rollout job (a start, a rollback by a person)."""
    return dg.AssetMaterialization(
        asset_key=[rollout.pipeline, "traffic_split"],
        metadata=traffic_metadata(rollout, reason, via),
    )


def build_model_jobs(pipeline: Pipeline) -> list[dg.JobDefinition]:
    name = pipeline.name
    records = f"{name}_records"
    resources = {PLATFORM, NOTIFIER, records}

    def changed(context: dg.OpExecutionContext, move: AliasMove):
        platform = getattr(context.resources, PLATFORM)
        source = getattr(context.resources, records).source()
        yield from champion_materializations(
            pipeline, platform.registry(), platform.references(), source, move, "Dagster job"
        )

    def required(config: ModelChange) -> int:
        if config.version is None:
            raise dg.Failure("config 'version' is required: the candidate to approve or reject")
        return config.version

    @dg.op(name=f"{name}_approve", required_resource_keys=resources, out={})
    def approve(context: dg.OpExecutionContext, config: ModelChange):
        """Approve a pending candidate: it becomes the champion."""
        move = lifecycle.approve(
            getattr(context.resources, PLATFORM).registry(),
            getattr(context.resources, NOTIFIER).notifier(),
            name,
            required(config),
            actor=actor_of(context, config.user),
            reason=config.reason,
        )
        yield from changed(context, move)

    @dg.op(name=f"{name}_reject", required_resource_keys=resources)
    def reject(context: dg.OpExecutionContext, config: ModelChange) -> None:
        """Reject a pending candidate: the champion stays."""
        lifecycle.reject(
            getattr(context.resources, PLATFORM).registry(),
            name,
            required(config),
            actor=actor_of(context, config.user),
            reason=config.reason,
        )

    @dg.op(name=f"{name}_rollback", required_resource_keys=resources, out={})
    def rollback(context: dg.OpExecutionContext, config: ModelChange):
        """Roll back what is live: an active rollout (all traffic back to the champion), else
        the champion (to an earlier version; default: the one before this)."""
        undone = lifecycle.rollback_live(
            getattr(context.resources, PLATFORM).registry(),
            getattr(context.resources, NOTIFIER).notifier(),
            name,
            to_version=config.version,
            actor=actor_of(context, config.user),
            reason=config.reason,
        )
        if isinstance(undone, Rollout):
            yield traffic_materialization(undone, config.reason, f"{config.user} (Dagster job)")
        else:
            yield from changed(context, undone)

    return [
        dg.GraphDefinition(
            name=f"{name}_{op.name.removeprefix(name + '_')}_job", node_defs=[op]
        ).to_job(description=op.description)
        for op in (approve, reject, rollback)
    ]
