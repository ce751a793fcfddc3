"""Judgements: the candidates each promotion decision judged, found by index (the run that
judged them, or the version) rather than by scanning the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from retraining_assets.core import schema as tables
from retraining_assets.core.registry.base import RegistryBase
from retraining_assets.core.registry.records import jsonable


class Judgements(RegistryBase):
    """Write and find the judgement rows (one per judged candidate)."""

    def add_judgement(
        self,
        pipeline: str,
        *,
        audit_id: int,
        run_id: str | None,
        versions: Mapping[str, int],
        decision: Mapping[str, Any],
        scores: Mapping[str, Mapping[str, Any]],
        at: datetime,
        connection: sa.Connection | None = None,
    ) -> None:
        """One row per candidate (``versions``: its name in the comparison -> its version),
        beside the ``decision`` audit row ``audit_id``; pass that row's connection to write
        both in one transaction."""
        rows = [
            {
                "audit_id": audit_id,
                "pipeline": pipeline,
                "run_id": run_id,
                "version": version,
                "model": model,
                "decision": jsonable(decision),
                "scores": jsonable(scores.get(model)),
                "judged_at": at,
            }
            for model, version in versions.items()
        ]
        with self._writing(connection) as conn:
            conn.execute(sa.insert(tables.judgements), rows)

    def decision_of_run(self, pipeline: str, run_id: str) -> dict[str, Any] | None:
        """The decision recorded by run ``run_id`` (the newest, if it judged twice)."""
        table = tables.judgements
        return self._newest(table.c.decision, table.c.run_id == run_id, pipeline)

    def judged_scores(self, pipeline: str, version: int) -> dict[str, Any] | None:
        """The holdout metrics ``version`` had when it was last judged."""
        table = tables.judgements
        return self._newest(table.c.scores, table.c.version == version, pipeline)

    def _newest(self, column: sa.Column, where: sa.ColumnElement[bool], pipeline: str) -> Any:
        """``column`` of the newest judgement row of ``pipeline`` matching ``where``."""
        table = tables.judgements
        query = (
            sa.select(column)
            .where(where, table.c.pipeline == pipeline)
            .order_by(table.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            return connection.execute(query).scalar()
