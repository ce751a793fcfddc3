"""Approval requests: a candidate that waits for a person, resolved once by compare-and-set,
the newest request superseding older ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from retraining_assets.core import schema as tables
from retraining_assets.core.registry.aliases import Aliases
from retraining_assets.core.registry.identity import actual_identity
from retraining_assets.core.registry.records import (
    APPROVED,
    CHAMPION,
    PENDING_APPROVAL,
    REGISTERED,
    REJECTED,
    SUPERSEDED,
    AliasMove,
    ApprovalError,
    PendingApproval,
    jsonable,
    record_from_row,
)
from retraining_assets.core.timestamps import iso_utc, utc_now


class Approvals(Aliases):
    """Request, supersede and resolve approvals (and approve-and-promote atomically)."""

    def request_approval(
        self,
        pipeline: str,
        version: int,
        *,
        decision: Mapping[str, Any],
        by: str,
        actual_user: str | None = None,
        reason: str = "",
        connection: sa.Connection | None = None,
    ) -> PendingApproval:
        """Record that ``version`` waits for a person (status ``pending_approval``), audited
        as ``approval_requested`` with the decision. One request per version.

        The newest candidate was judged on the newest data: it supersedes the pipeline's other
        pending requests in the same transaction (approval status ``superseded``, the versions
        back to ``registered``, audited as ``approval_superseded``), so administrators decide
        one candidate at a time and an old one cannot be approved by mistake."""
        actual_user = actual_user or actual_identity()
        decision = jsonable(decision)
        with self._writing(connection) as conn:
            self.get_version(pipeline, version, connection=conn)
            existing = self._approval(conn, pipeline, version)
            if existing is not None:
                raise ApprovalError(
                    f"{pipeline} v{version} already has an approval request ({existing.status})"
                )
            conn.execute(
                sa.insert(tables.approvals).values(
                    pipeline=pipeline,
                    version=version,
                    status="pending",
                    decision=decision,
                    requested_at=utc_now(),
                    requested_by=by,
                )
            )
            self._supersede_pending(conn, pipeline, version, by, actual_user)
            self._set_status_quietly(conn, pipeline, version, PENDING_APPROVAL)
            self.audit(
                pipeline,
                "approval_requested",
                version=version,
                by=by,
                actual_user=actual_user,
                reason=reason,
                details={"decision": decision},
                connection=conn,
            )
            return self._approval(conn, pipeline, version)  # type: ignore[return-value]

    def _supersede_pending(
        self, conn: sa.Connection, pipeline: str, version: int, by: str, actual_user: str
    ) -> None:
        approvals = tables.approvals
        older = (
            conn.execute(
                sa.select(approvals.c.version).where(
                    approvals.c.pipeline == pipeline,
                    approvals.c.status == "pending",
                    approvals.c.version != version,
                )
            )
            .scalars()
            .all()
        )
        reason = f"superseded by v{version}, judged on newer data"
        for old in older:
            self._resolve(
                conn, pipeline, old, (SUPERSEDED, REGISTERED, "approval_superseded"),
                by=by, actual_user=actual_user, reason=reason,
            )  # fmt: skip

    def _resolve(
        self,
        conn: sa.Connection,
        pipeline: str,
        version: int,
        outcome: tuple[str, str, str],
        *,
        by: str,
        actual_user: str,
        reason: str,
    ) -> bool:
        """Resolve a pending request by compare-and-set (False: it was not pending); then
        the version's status and the audit row. ``outcome``: (approval status, version
        status, audit action)."""
        approvals = tables.approvals
        status, version_status, action = outcome
        resolved = conn.execute(
            sa.update(approvals)
            .where(
                approvals.c.pipeline == pipeline,
                approvals.c.version == version,
                approvals.c.status == "pending",
            )
            .values(
                status=status,
                resolved_at=utc_now(),
                resolved_by=by,
                resolved_actual_user=actual_user,
                resolution_reason=reason,
            )
        ).rowcount
        if resolved != 1:
            return False
        self._set_status_quietly(conn, pipeline, version, version_status)
        self.audit(
            pipeline,
            action,
            version=version,
            by=by,
            actual_user=actual_user,
            reason=reason,
            connection=conn,
        )
        return True

    def pending_approvals(self, pipeline: str) -> list[PendingApproval]:
        """Unresolved approval requests of ``pipeline``, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(tables.approvals)
                .where(
                    tables.approvals.c.pipeline == pipeline, tables.approvals.c.status == "pending"
                )
                .order_by(tables.approvals.c.id)
            ).all()
        return [record_from_row(PendingApproval, row) for row in rows]

    def get_approval(self, pipeline: str, version: int) -> PendingApproval | None:
        with self.engine.connect() as connection:
            return self._approval(connection, pipeline, version)

    def resolve_approval(
        self,
        pipeline: str,
        version: int,
        *,
        approved: bool,
        by: str,
        actual_user: str,
        reason: str,
        connection: sa.Connection | None = None,
    ) -> PendingApproval:
        """Approve or reject a pending request, once: an unknown or already resolved request
        raises ``ApprovalError``. The version's status becomes approved/rejected; audited as
        ``approve``/``reject``."""
        outcome = APPROVED if approved else REJECTED
        action = "approve" if approved else "reject"
        with self._writing(connection) as conn:
            resolved = self._resolve(
                conn, pipeline, version, (outcome, outcome, action),
                by=by, actual_user=actual_user, reason=reason,
            )  # fmt: skip
            if not resolved:
                existing = self._approval(conn, pipeline, version)
                if existing is None:
                    raise ApprovalError(f"{pipeline} v{version} has no approval request")
                raise ApprovalError(
                    f"the approval of {pipeline} v{version} was already resolved "
                    f"({existing.status} by {existing.resolved_by} at "
                    f"{iso_utc(existing.resolved_at)})"
                )
            return self._approval(conn, pipeline, version)  # type: ignore[return-value]

    def approve_and_promote(
        self,
        pipeline: str,
        version: int,
        *,
        expected_current: int | None,
        by: str,
        actual_user: str,
        reason: str,
        alias: str = CHAMPION,
        details: Mapping[str, Any] | None = None,
        connection: sa.Connection | None = None,
    ) -> AliasMove:
        """Approve the pending request and move ``alias`` to ``version`` in one transaction
        (the caller's, if given): if the champion moved meanwhile, the approval stays pending
        too."""
        with self._writing(connection) as conn:
            self.resolve_approval(
                pipeline,
                version,
                approved=True,
                by=by,
                actual_user=actual_user,
                reason=reason,
                connection=conn,
            )
            return self.move_alias(
                pipeline,
                alias,
                version,
                expected_current=expected_current,
                by=by,
                actual_user=actual_user,
                reason=reason,
                action="promote",
                details=details,
                connection=conn,
            )

    @staticmethod
    def _approval(connection: sa.Connection, pipeline: str, version: int) -> PendingApproval | None:
        row = connection.execute(
            sa.select(tables.approvals).where(
                tables.approvals.c.pipeline == pipeline, tables.approvals.c.version == version
            )
        ).one_or_none()
        return None if row is None else record_from_row(PendingApproval, row)
