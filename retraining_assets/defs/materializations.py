"""What Dagster records about a change made outside a run's own outputs: a new champion (and
the reference refreshed for it) as materializations of ``champion_model`` and
``reference_data``, a traffic change as one of ``traffic_split``. The operator jobs, the CLI,
the champion sync sensor and the rollout assets all report through these, so the UI never
shows a stale state."""

from typing import Any

import dagster as dg

from retraining_assets.core.reference import Reference, ReferenceStore
from retraining_assets.core.registry import AliasMove, ModelVersion, Registry
from retraining_assets.core.rollout.transitions import Rollout


def champion_metadata(
    registry: Registry, champion: ModelVersion, move: AliasMove
) -> dict[str, dg.MetadataValue]:
    """What the UI shows of a new champion, however it moved: the version, where its
    artifact is (its URI relative to the artifact root, and the file) and the SHA-256 every
    load verifies, and why it moved."""
    return {
        "version": dg.MetadataValue.int(move.version),
        "family": dg.MetadataValue.text(champion.family),
        "previous_version": dg.MetadataValue.int(move.previous_version or 0),
        "reason": dg.MetadataValue.text(move.reason),
        "artifact_uri": dg.MetadataValue.text(champion.artifact_uri),
        "artifact_path": dg.MetadataValue.path(str(registry.artifact_root / champion.artifact_uri)),
        "artifact_sha256": dg.MetadataValue.text(champion.artifact_sha256),
        "metrics": dg.MetadataValue.json(champion.metrics),
    }


def champion_materializations(
    pipeline: str,
    registry: Registry,
    store: ReferenceStore,
    move: AliasMove,
    via: str,
) -> list[dg.AssetMaterialization]:
    """Point the reference at the new champion; what Dagster should record about both. Reads
    only the registry: an emergency change never waits for a record source."""
    reference = store.current(pipeline, registry)
    champion = registry.get_version(pipeline, move.version)
    events = [
        dg.AssetMaterialization(
            asset_key=[pipeline, "champion_model"],
            metadata={
                **champion_metadata(registry, champion, move),
                "action": move.action,
                "changed_by": f"{move.by} ({via})",
            },
        )
    ]
    if reference is not None:
        events.append(reference_materialization(pipeline, reference))
    return events


def reference_materialization(pipeline: str, reference: Reference) -> dg.AssetMaterialization:
    """``reference_data`` moved outside its own run (a champion change, a re-validation)."""
    return dg.AssetMaterialization(
        asset_key=[pipeline, "reference_data"],
        metadata={
            "origin": reference.origin,
            "window": reference.window,
            "profile_hash": reference.profile.content_hash,
        },
    )


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
