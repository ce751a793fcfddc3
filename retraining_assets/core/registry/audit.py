"""The append-only audit log: who claimed to act, who actually did, what, why and with what
figures. The registry never updates or deletes an audit row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from retraining_assets.core import schema as tables
from retraining_assets.core.registry.base import RegistryBase
from retraining_assets.core.registry.records import AuditEntry, RowValues, jsonable, record_from_row
from retraining_assets.core.timestamps import utc_now


class AuditLog(RegistryBase):
    """Append to and read the audit log."""

    def audit(
        self,
        pipeline: str,
        action: str,
        *,
        version: int | None = None,
        by: str,
        actual_user: str,
        reason: str = "",
        details: Mapping[str, Any] | None = None,
        connection: sa.Connection | None = None,
    ) -> AuditEntry:
        """Append one entry: who claimed (``by``), who actually acted, what, why, with what
        figures. The registry never updates or deletes audit rows."""
        row = {
            "pipeline": pipeline,
            "at": utc_now(),
            "action": action,
            "version": version,
            "claimed_by": by,
            "actual_user": actual_user,
            "reason": reason,
            "details": None if details is None else jsonable(details),
        }
        with self._writing(connection) as conn:
            entry_id = conn.execute(sa.insert(tables.audit_log).values(row)).inserted_primary_key[0]
        return record_from_row(AuditEntry, RowValues({**row, "id": entry_id}))

    def audit_log(self, pipeline: str, limit: int | None = None) -> list[AuditEntry]:
        """The pipeline's audit entries, oldest first; ``limit`` keeps the newest ones."""
        query = sa.select(tables.audit_log).where(tables.audit_log.c.pipeline == pipeline)
        with self.engine.connect() as connection:
            if limit is None:
                rows = connection.execute(query.order_by(tables.audit_log.c.id)).all()
            else:
                rows = connection.execute(
                    query.order_by(tables.audit_log.c.id.desc()).limit(limit)
                ).all()[::-1]
        return [record_from_row(AuditEntry, row) for row in rows]
