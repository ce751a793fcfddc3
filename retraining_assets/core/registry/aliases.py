"""Aliases (``champion``, ``challenger``): each move a compare-and-set on the version the
caller expected, with its history row and its audit row in the same transaction."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from retraining_assets.core import schema as tables
from retraining_assets.core.registry.records import (
    CHAMPION,
    REJECTED,
    AliasConflictError,
    AliasMove,
    ModelVersion,
    RegistryError,
    RowValues,
    check_name,
    record_from_row,
)
from retraining_assets.core.registry.versions import Versions
from retraining_assets.core.timestamps import utc_now

log = logging.getLogger(__name__)
_IN_MEMORY_LOCKS: dict[tuple[str, str], threading.Lock] = {}


class Aliases(Versions):
    """Move, clear, read and lock aliases; every move kept in ``alias_history``."""

    def move_alias(
        self,
        pipeline: str,
        alias: str,
        to_version: int,
        *,
        expected_current: int | None,
        by: str,
        actual_user: str,
        reason: str,
        action: str = "promote",
        details: Mapping[str, Any] | None = None,
        connection: sa.Connection | None = None,
    ) -> AliasMove:
        """Point ``alias`` at ``to_version`` if it still points at ``expected_current`` (None:
        not set yet); else ``AliasConflictError`` and nothing changes. The move, its history
        row and its audit row are one transaction. A rejected version cannot get an alias."""
        check_name("alias", alias)
        with self._writing(connection) as conn:
            target = self.get_version(pipeline, to_version, connection=conn)
            if target.status == REJECTED:
                raise RegistryError(
                    f"{pipeline} v{to_version} was rejected; it cannot become {alias}"
                )
            self._compare(conn, pipeline, alias, expected_current)
            values = {"version": to_version, "moved_at": utc_now(), "moved_by": by}
            if expected_current is None:
                try:
                    conn.execute(
                        sa.insert(tables.aliases).values(pipeline=pipeline, alias=alias, **values)
                    )
                except sa.exc.IntegrityError:  # PostgreSQL: a racing first move committed
                    raise AliasConflictError(pipeline, alias, None, "set concurrently") from None
            else:
                self._swap(
                    conn,
                    pipeline,
                    alias,
                    expected_current,
                    sa.update(tables.aliases).values(**values),
                )
            return self._record_move(
                conn,
                pipeline,
                alias,
                to_version,
                expected_current,
                by=by,
                actual_user=actual_user,
                reason=reason,
                action=action,
                details=details,
            )

    def clear_alias(
        self,
        pipeline: str,
        alias: str,
        *,
        expected_current: int,
        by: str,
        actual_user: str,
        reason: str,
        action: str = "clear",
        details: Mapping[str, Any] | None = None,
        connection: sa.Connection | None = None,
    ) -> AliasMove:
        """Remove ``alias`` (e.g. end a challenger) if it still points at ``expected_current``;
        recorded in the history (version None) and the audit log like a move."""
        check_name("alias", alias)
        with self._writing(connection) as conn:
            self._compare(conn, pipeline, alias, expected_current)
            self._swap(conn, pipeline, alias, expected_current, sa.delete(tables.aliases))
            return self._record_move(
                conn,
                pipeline,
                alias,
                None,
                expected_current,
                by=by,
                actual_user=actual_user,
                reason=reason,
                action=action,
                details=details,
            )

    def rollback(
        self,
        pipeline: str,
        to_version: int,
        *,
        expected_current: int | None,
        by: str,
        actual_user: str,
        reason: str,
        alias: str = CHAMPION,
        connection: sa.Connection | None = None,
    ) -> AliasMove:
        """Move the champion back to an earlier version (its own drift profile comes along)."""
        return self.move_alias(
            pipeline,
            alias,
            to_version,
            expected_current=expected_current,
            by=by,
            actual_user=actual_user,
            reason=reason,
            action="rollback",
            connection=connection,
        )

    def get_alias(
        self, pipeline: str, alias: str, *, connection: sa.Connection | None = None
    ) -> ModelVersion | None:
        with self._reading(connection) as conn:
            version = self._current(conn, pipeline, alias)
            return None if version is None else self.get_version(pipeline, version, connection=conn)

    def alias_history(self, pipeline: str, alias: str | None = None) -> list[AliasMove]:
        """Every move of ``alias`` (or of all aliases of ``pipeline``), oldest first."""
        query = sa.select(tables.alias_history).where(tables.alias_history.c.pipeline == pipeline)
        if alias is not None:
            query = query.where(tables.alias_history.c.alias == alias)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(tables.alias_history.c.id)).all()
        return [record_from_row(AliasMove, row) for row in rows]

    @contextlib.contextmanager
    def alias_lock(self, pipeline: str, alias: str = CHAMPION) -> Iterator[None]:
        """Hold the right to change ``pipeline``'s ``alias`` across processes, without holding
        the database's write lock: whoever changes an alias checks, announces and moves it
        under this lock, so a notice is never sent for a change a racing one then refuses.
        PostgreSQL: a session advisory lock; SQLite: an ``flock`` beside the database file."""
        name = f"{check_name('pipeline', pipeline)}@{check_name('alias', alias)}"
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as connection:
                key = _lock_key(name)
                if not connection.scalar(sa.select(sa.func.pg_try_advisory_lock(key))):
                    log.warning("waiting for the %s lock: another change is under way", name)
                    connection.execute(sa.select(sa.func.pg_advisory_lock(key)))
                try:
                    yield
                finally:
                    connection.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                    connection.commit()
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            lock = _IN_MEMORY_LOCKS.setdefault((str(self.engine.url), name), threading.Lock())
            with lock:
                yield
            return
        path = Path(f"{database}.{name}.lock")
        with path.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.warning("waiting for the %s lock: another change is under way", name)
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def next_move_number(self, pipeline: str, alias: str = CHAMPION) -> int:
        """The sequence number the next move of ``alias`` will have (1 for the first): under
        :meth:`alias_lock` it names that move, e.g. in a notification's idempotency key."""
        with self.engine.connect() as connection:
            moves = connection.scalar(
                sa.select(sa.func.count()).where(
                    tables.alias_history.c.pipeline == pipeline,
                    tables.alias_history.c.alias == alias,
                )
            )
        return int(moves or 0) + 1

    @staticmethod
    def lock_alias(connection: sa.Connection, pipeline: str, alias: str) -> int | None:
        """In a write transaction: the alias's version, its row locked until the transaction
        ends, so writers that decide from it take turns (PostgreSQL ``SELECT ... FOR UPDATE``;
        SQLite's ``BEGIN IMMEDIATE`` already serialises writers)."""
        return connection.scalar(
            sa.select(tables.aliases.c.version)
            .where(tables.aliases.c.pipeline == pipeline, tables.aliases.c.alias == alias)
            .with_for_update()
        )

    @staticmethod
    def _current(connection: sa.Connection, pipeline: str, alias: str) -> int | None:
        return connection.scalar(
            sa.select(tables.aliases.c.version).where(
                tables.aliases.c.pipeline == pipeline, tables.aliases.c.alias == alias
            )
        )

    def _compare(
        self, connection: sa.Connection, pipeline: str, alias: str, expected: int | None
    ) -> None:
        # Fast refusal with the value actually found; the conditional write is the real guard.
        current = self._current(connection, pipeline, alias)
        if current != expected:
            raise AliasConflictError(pipeline, alias, expected, current)

    @staticmethod
    def _swap(
        connection: sa.Connection,
        pipeline: str,
        alias: str,
        expected: int,
        statement: sa.Update | sa.Delete,
    ) -> None:
        """Run ``statement`` on the alias row only if it still holds ``expected``."""
        changed = connection.execute(
            statement.where(
                tables.aliases.c.pipeline == pipeline,
                tables.aliases.c.alias == alias,
                tables.aliases.c.version == expected,
            )
        ).rowcount
        if changed != 1:  # PostgreSQL: a racing move committed after our read
            raise AliasConflictError(pipeline, alias, expected, "moved concurrently")

    def _record_move(
        self,
        connection: sa.Connection,
        pipeline: str,
        alias: str,
        version: int | None,
        previous: int | None,
        *,
        by: str,
        actual_user: str,
        reason: str,
        action: str,
        details: Mapping[str, Any] | None,
    ) -> AliasMove:
        row = {
            "pipeline": pipeline,
            "alias": alias,
            "version": version,
            "previous_version": previous,
            "at": utc_now(),
            "claimed_by": by,
            "actual_user": actual_user,
            "reason": reason,
            "action": action,
        }
        move_id = connection.execute(
            sa.insert(tables.alias_history).values(row)
        ).inserted_primary_key[0]
        self.audit(
            pipeline,
            action,
            version=version,
            by=by,
            actual_user=actual_user,
            reason=reason,
            details={"alias": alias, "from": previous, "to": version, **(details or {})},
            connection=connection,
        )
        return record_from_row(AliasMove, RowValues({**row, "id": move_id}))


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory lock (``hash()`` is salted)."""
    digest = hashlib.sha256(f"retraining_assets.alias_lock:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
