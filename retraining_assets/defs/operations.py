"""Jobs a person launches from the Dagster UI (with config): approve, reject, roll back; and
the sensor that catches Dagster up with a champion move it missed.

They call the same core functions as the ``retrain`` CLI; every change is reported through
``defs.materializations`` (champion, reference, traffic split), so the UI never shows a stale
state.
"""

import contextlib
from collections.abc import Iterator

import dagster as dg

from retraining_assets.core import lifecycle
from retraining_assets.core.lifecycle import change_job_name
from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.registry import (
    CHAMPION,
    AliasMove,
    RegistryError,
)
from retraining_assets.core.rollout.transitions import Rollout
from retraining_assets.defs.identity import actor_of
from retraining_assets.defs.materializations import (
    champion_materializations,
    traffic_materialization,
)
from retraining_assets.defs.notifications import NotifierResource
from retraining_assets.defs.resources import PlatformResource


class ModelChange(dg.Config):
    """Who asks and why; the audit log records it with the identity that really ran it."""

    version: int | None = None  # approve/reject: required; rollback: default the previous one
    user: str
    reason: str


def build_model_jobs(pipeline: Pipeline) -> list[dg.JobDefinition]:
    name = pipeline.name

    def changed(platform: PlatformResource, move: AliasMove) -> Iterator[dg.AssetMaterialization]:
        yield from champion_materializations(
            name, platform.registry(), platform.references(), move, "Dagster job"
        )

    @contextlib.contextmanager
    def refused_clearly() -> Iterator[None]:
        # a refusal (nothing changed, nothing announced) is the op's one-line failure
        try:
            yield
        except (RegistryError, LookupError) as error:
            raise dg.Failure(description=str(error)) from None

    def required(config: ModelChange) -> int:
        if config.version is None:
            raise dg.Failure("config 'version' is required: the candidate to approve or reject")
        return config.version

    @dg.op(name=f"{name}_approve", out={})
    def approve(
        context: dg.OpExecutionContext,
        config: ModelChange,
        platform: PlatformResource,
        notifier: NotifierResource,
    ) -> Iterator[dg.AssetMaterialization]:
        """Approve a pending candidate: it becomes the champion."""
        with refused_clearly():
            move = lifecycle.approve(
                platform.registry(),
                notifier.notifier(),
                name,
                required(config),
                actor=actor_of(context, config.user),
                reason=config.reason,
            )
        yield from changed(platform, move)

    @dg.op(name=f"{name}_reject")
    def reject(
        context: dg.OpExecutionContext, config: ModelChange, platform: PlatformResource
    ) -> None:
        """Reject a pending candidate: the champion stays."""
        with refused_clearly():
            lifecycle.reject(
                platform.registry(),
                name,
                required(config),
                actor=actor_of(context, config.user),
                reason=config.reason,
            )

    @dg.op(name=f"{name}_rollback", out={})
    def rollback(
        context: dg.OpExecutionContext,
        config: ModelChange,
        platform: PlatformResource,
        notifier: NotifierResource,
    ) -> Iterator[dg.AssetMaterialization]:
        """Roll back what is live: an active rollout (all traffic back to the champion), else
        the champion (to an earlier version; default: the one before this)."""
        with refused_clearly():
            undone = lifecycle.rollback_live(
                platform.registry(),
                notifier.notifier(),
                name,
                to_version=config.version,
                actor=actor_of(context, config.user),
                reason=config.reason,
            )
        if isinstance(undone, Rollout):
            yield traffic_materialization(undone, config.reason, f"{config.user} (Dagster job)")
        else:
            yield from changed(platform, undone)

    ops = {"approve": approve, "reject": reject, "rollback": rollback}
    return [
        dg.GraphDefinition(name=change_job_name(name, action), node_defs=[op]).to_job(
            description=op.description
        )
        for action, op in ops.items()
    ]


def build_champion_sensor(pipeline: Pipeline) -> dg.SensorDefinition:
    """Catch Dagster up with the registry after a crash between a champion move and its
    report: when the champion differs from the latest ``champion_model`` materialization,
    record the move (and the refreshed reference) without a run. Reads two rows."""
    name = pipeline.name
    champion_key = dg.AssetKey([name, "champion_model"])

    @dg.sensor(
        name=f"{name}_champion_sync_sensor",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Records a champion move Dagster has not seen (after a crash right after "
        "it): reads the champion alias and champion_model's latest materialization only.",
    )
    def champion_sync(
        context: dg.SensorEvaluationContext, platform: PlatformResource
    ) -> dg.SensorResult | dg.SkipReason:
        registry = platform.registry()
        champion = registry.get_alias(name, CHAMPION)
        if champion is None:
            return dg.SkipReason("no champion yet")
        latest = context.instance.get_latest_materialization_event(champion_key)
        seen = latest.asset_materialization.metadata.get("version") if latest else None
        if seen is not None and seen.value == champion.version:
            return dg.SkipReason(f"champion_model already shows v{champion.version}")
        move = registry.alias_history(name, CHAMPION)[-1]
        context.log.info(f"champion is v{champion.version}, Dagster showed {seen and seen.value}")
        return dg.SensorResult(
            asset_events=champion_materializations(
                name, registry, platform.references(), move, "champion sync sensor"
            )
        )

    return champion_sync
