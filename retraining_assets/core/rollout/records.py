"""Rollouts as the platform database holds them: the record, its statuses and errors, and the
queries that find the active rollout of a pipeline or a rollout by id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from retraining_assets.core import schema as tables
from retraining_assets.core.registry import CHALLENGER, CHAMPION, Registry, RegistryError
from retraining_assets.core.rollout.plan import RolloutPlan, RolloutStep
from retraining_assets.core.rollout.router import Router
from retraining_assets.core.timestamps import iso_utc

ACTIVE, PROMOTED, ROLLED_BACK, HALTED, STOPPED = (
    "active",
    "promoted",
    "rolled_back",
    "halted",
    "stopped",
)
ENDINGS = frozenset({ROLLED_BACK, HALTED, STOPPED})


MAX_SALT_LENGTH = 255  # the rollouts table's salt column


class RolloutError(RegistryError):
    """A rollout change was refused; nothing was changed."""


class RolloutConflictError(RolloutError):
    """The rollout is no longer where the caller saw it (another run changed it)."""


@dataclass(frozen=True)
class Rollout:
    """One rollout of a challenger against the champion."""

    id: int
    pipeline: str
    champion_version: int
    challenger_version: int
    plan: RolloutPlan
    salt: str
    step: int
    status: str
    started_at: datetime
    step_started_at: datetime
    ended_at: datetime | None
    started_by: str
    reason: str

    @property
    def share(self) -> float:
        """The challenger's traffic share now (0 once ended without promotion, 1 if promoted)."""
        if self.status == ACTIVE:
            return self.plan.share_at(self.step)
        return 1.0 if self.status == PROMOTED else 0.0

    def router(self) -> Router:
        """The traffic router: the rollout's salt and the current step's weights."""
        return Router(self.salt, {CHALLENGER: self.share, CHAMPION: 1.0 - self.share})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601 UTC, the plan as ``RolloutPlan.to_dict()``."""
        times = ("started_at", "step_started_at", "ended_at")
        out: dict[str, Any] = {
            key: getattr(self, key)
            for key in ("id", "pipeline", "champion_version", "challenger_version", "salt")
        }
        out |= {"strategy": str(self.plan.strategy), "step": self.step, "status": self.status}
        out |= {"share": self.share, "plan": self.plan.to_dict()}
        out |= {key: iso_utc(getattr(self, key)) for key in times}
        return out | {"started_by": self.started_by, "reason": self.reason}


# --- reading ---------------------------------------------------------------------------------


def active_rollout(
    registry: Registry, pipeline: str, *, connection: sa.Connection | None = None
) -> Rollout | None:
    """The pipeline's active rollout, None when there is none."""
    query = sa.select(tables.rollouts).where(
        tables.rollouts.c.pipeline == pipeline, tables.rollouts.c.status == ACTIVE
    )
    return _one(registry, query, connection)


def get_rollout(
    registry: Registry, rollout_id: int, *, connection: sa.Connection | None = None
) -> Rollout:
    """A rollout by id, or ``RolloutError``."""
    found = _one(
        registry, sa.select(tables.rollouts).where(tables.rollouts.c.id == rollout_id), connection
    )
    if found is None:
        raise RolloutError(f"there is no rollout {rollout_id}")
    return found


def _one(registry: Registry, query: sa.Select, connection: sa.Connection | None) -> Rollout | None:
    if connection is not None:
        row = connection.execute(query).one_or_none()
    else:
        with registry.engine.connect() as own:
            row = own.execute(query).one_or_none()
    return None if row is None else _rollout(row._mapping)


def _rollout(row: Any) -> Rollout:
    plan = dict(row["plan"])
    steps = tuple(RolloutStep(**step) for step in plan.pop("steps"))
    values = {k: row[k] for k in Rollout.__dataclass_fields__ if k != "plan"}
    return Rollout(**values, plan=RolloutPlan(steps=steps, **plan))
