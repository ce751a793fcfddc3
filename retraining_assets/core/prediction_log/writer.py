"""``PredictionLog``: every prediction served and every outcome observed, on disk at once and
in the platform database soon after.

Rows handed to the log get increasing sequence numbers. With a spool folder they go to the
spool (``spool.py``) first: ``wait_durable(seq)`` returns once they are synced to disk, which
is what the service waits for before it answers, so a 200 means the row survives a SIGKILL.
A background thread writes them to the database, ``batch_size`` rows per round trip or after
``flush_seconds`` at the latest; rows of a process that died are replayed from its spool at the
next ``start()``. Writes are idempotent (``ON CONFLICT DO NOTHING`` on the ids), so a row
written twice counts once.

Failures, and what happens to the rows:

- The database is unreachable, locked or not migrated (``TRANSIENT``): every row is kept and
  retried with back-off; the state is ``retrying``.
- The database or its driver refuses a row for what it holds (``ROW_ERRORS``: a constraint, a
  value too long, a NUL character psycopg2 cannot send, a number SQLite cannot store): the
  batch is halved until that row stands alone, and it is set aside with the reason in
  ``refused-*.jsonl`` (never replayed by itself: a person looks first). The rows around it
  are written.
- Anything else (a bug, a full disk while setting a row aside): logged with its traceback,
  the rows kept, and the writer restarted after a back-off (state ``restarting``). A writer
  thread that died anyway is started again by the next ``add_*`` or ``status()``.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from retraining_assets.core.prediction_log.queries import insert_ignoring_duplicates
from retraining_assets.core.prediction_log.records import (
    TABLES,
    Outcome,
    Prediction,
    Record,
    _row,
    set_aside_line,
)
from retraining_assets.core.prediction_log.spool import Listener, Spool

log = logging.getLogger(__name__)

MAX_RETRY_SECONDS = 5.0
ROUND_ROWS = 10_000  # rows per writer round (one transaction unless a row is refused)
TRANSIENT = (
    sa.exc.OperationalError,  # connection lost, database locked, SQLite "no such table"
    sa.exc.InterfaceError,
    sa.exc.ProgrammingError,  # PostgreSQL: table missing (not migrated yet)
    sa.exc.InternalError,
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,  # the connection pool
)
# Refusals of one row's content, the same on every retry. psycopg2 raises a plain ValueError
# for a NUL character and sqlite3 an OverflowError for an integer beyond 64 bits: neither is a
# SQLAlchemy exception.
ROW_ERRORS = (sa.exc.IntegrityError, sa.exc.DataError, ValueError, TypeError, OverflowError)
State = Literal["writing", "retrying", "restarting", "stopped", "closed"]


@dataclass
class _Round:
    """How far one writer round got: the leading rows settled (written or refused)."""

    settled: int = 0
    written: dict[str, int] = field(default_factory=lambda: {"predictions": 0, "outcomes": 0})
    refused: list[tuple[Record, str]] = field(default_factory=list)


class PredictionLog:
    """A durable, batched, supervised writer of predictions and outcomes (module docstring)."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        batch_size: int = 1000,
        flush_seconds: float = 0.5,
        spool_dir: Path | None = None,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.spool_dir = spool_dir
        self.spool = Spool(spool_dir) if spool_dir is not None else None
        self._queue: deque[Record] = deque()
        self._cond = threading.Condition()
        self._added = 0  # sequence number of the last row queued
        self._done = 0  # rows settled in the database (written or set aside), in order
        self._written = {"predictions": 0, "outcomes": 0}
        self._refused = 0
        self._restarts = 0
        self._flush_wanted = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self._state: State = "writing"
        self.last_error: str | None = None
        self.last_written_at: float | None = None  # time.time() of the last database write
        self._refused_path: Path | None = None

    # --- life cycle ----------------------------------------------------------------------
    def start(self) -> PredictionLog:
        """Open the spool (queueing what a process that died left in it) and start the
        writer thread. ``SpoolError`` when the spool folder cannot be used."""
        if self._thread is None:
            if self.spool is not None:
                replayed = self.spool.open()
                self._queue.extend(replayed)
                self._added = len(replayed)
            self._start_writer()
        return self

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything queued and stop. Rows the database does not take within
        ``timeout`` stay in the spool for the next start (without a spool they are reported
        lost in the error log). Idempotent."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cond:
            left, done = len(self._queue), self._done
            self._state = "closed"
        if self.spool is not None:
            self.spool.close(done)
            if left:
                log.warning("prediction log: %d unwritten rows stay in %s", left, self.spool_dir)
        elif left:
            log.error("prediction log: %d rows could not be written and are lost", left)

    def __enter__(self) -> PredictionLog:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- adding rows ---------------------------------------------------------------------
    def add_predictions(self, rows: Iterable[Prediction]) -> int:
        """Queue predictions; returns at once with the sequence number of the last one
        (wait for it with ``wait_durable``)."""
        return self._add(rows)

    def add_outcomes(self, rows: Iterable[Outcome]) -> int:
        """Queue outcomes; the sequence number of the last one, as ``add_predictions``."""
        return self._add(rows)

    def _add(self, rows: Iterable[Record]) -> int:
        batch = list(rows)
        with self._cond:
            if self._closing:
                raise RuntimeError("the prediction log is closed")
            if self._thread is None:
                raise RuntimeError("the prediction log is not started")
            self._queue.extend(batch)
            self._added += len(batch)
            seq = self._added
            if batch and self.spool is not None:
                self.spool.append(batch, seq)  # under the lock: the spool sees queue order
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()
            self._ensure_writer()
        return seq

    def wait_durable(self, seq: int, timeout: float | None = None) -> bool:
        """Block until the rows up to ``seq`` are on disk (at once without a spool)."""
        return True if self.spool is None else self.spool.wait(seq, timeout)

    def subscribe(self, listener: Listener) -> None:
        """``listener(seq, error)`` after every spool sync (see ``Spool.subscribe``)."""
        if self.spool is not None:
            self.spool.subscribe(listener)

    @property
    def queued(self) -> int:
        """The sequence number of the last row queued."""
        with self._cond:
            return self._added

    @property
    def durable(self) -> int:
        """Rows up to this sequence number are on disk (all of them without a spool)."""
        if self.spool is None:
            with self._cond:
                return self._added
        return self.spool.durable

    def flush(self, timeout: float | None = None) -> None:
        """Block until every row queued before this call is in the database (``TimeoutError``
        when the database does not take them within ``timeout``)."""
        with self._cond:
            if self._thread is None:
                raise RuntimeError("the prediction log is not started")
            if self._closing:
                raise RuntimeError("the prediction log is closed")
            target = self._added
            self._flush_wanted = True
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: self._done >= target, timeout):
                raise TimeoutError(
                    f"{target - self._done} logged rows not written: {self.last_error}"
                )

    # --- what /health shows --------------------------------------------------------------
    @property
    def backlog(self) -> int:
        """Rows queued but not in the database yet."""
        with self._cond:
            return self._added - self._done

    @property
    def written(self) -> dict[str, int]:
        """Rows this log has written, by kind."""
        with self._cond:
            return dict(self._written)

    @property
    def refused(self) -> int:
        """Rows the database refused (constraint or value errors), set aside, not retried."""
        with self._cond:
            return self._refused

    @property
    def state(self) -> State:
        """``writing`` (healthy), ``retrying`` (database errors, rows kept), ``restarting``
        (the writer failed and restarts), ``stopped`` (no writer thread) or ``closed``."""
        with self._cond:
            if self._state == "writing" and not self._writer_alive():
                return "stopped"
            return self._state

    def status(self) -> dict[str, Any]:
        """The writer's state, backlog and counts, and the spool's (no file paths)."""
        with self._cond:
            self._ensure_writer()
        state = self.state
        spool = self.spool
        return {
            "state": state,
            "backlog": self.backlog,
            "written": self.written,
            "refused": self.refused,
            "restarts": self._restarts,
            "last_error": self.last_error,
            "seconds_since_write": None
            if self.last_written_at is None
            else round(time.time() - self.last_written_at, 3),
            "spool": None
            if spool is None
            else {"durable": spool.error is None, "syncs": spool.syncs, "error": spool.error},
        }

    # --- the writer thread ---------------------------------------------------------------
    def _start_writer(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="prediction-log", daemon=True)
        self._thread.start()

    def _writer_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _ensure_writer(self) -> None:
        """Under ``_cond``: start a new writer if the last one died (never expected: the
        supervisor catches everything, but a 200 must not depend on that)."""
        if self._thread is not None and not self._closing and not self._writer_alive():
            log.error("prediction log: the writer thread had stopped; starting it again")
            self._restarts += 1
            self._start_writer()

    def _supervise(self) -> None:
        failures = 0
        while True:
            try:
                self._run()
                return
            except Exception as error:
                failures += 1
                log.exception("prediction log writer failed; restarting it (rows are kept)")
                with self._cond:
                    self._restarts += 1
                    self._state = "restarting"
                    self.last_error = _first_line(error)
                    self._cond.wait_for(lambda: self._closing, _backoff(failures))
                    if self._closing and failures >= 3:
                        return  # close(): what is left stays in the spool

    def _run(self) -> None:
        failures = 0
        while True:
            with self._cond:
                if failures:  # back off before retrying, unless stopping
                    self._cond.wait_for(lambda: self._closing, _backoff(failures))
                else:
                    self._cond.wait_for(self._due, self.flush_seconds)
                self._flush_wanted = False
                if not self._queue:
                    self._state = "writing"
                    if self._closing:
                        return
                    continue
                batch = list(itertools.islice(self._queue, ROUND_ROWS))  # popped once settled
            progress = _Round()
            try:
                self._write_isolating(batch, progress)
                error: BaseException | None = None
            except TRANSIENT as transient:
                error = transient
            if progress.refused:
                self._set_aside(progress.refused)
            self._settle(progress)
            if error is None:
                failures = 0
                continue
            failures += 1
            with self._cond:
                self._state = "retrying"
                self.last_error = _first_line(error)
            log.warning("prediction log write failed (%s); will retry", self.last_error)
            if self._closing and failures >= 3:
                return  # close(): what is left stays in the spool

    def _due(self) -> bool:
        return self._closing or self._flush_wanted or len(self._queue) >= self.batch_size

    def _settle(self, progress: _Round) -> None:
        """Pop the settled rows, count them, and delete the spool segments they empty."""
        if not progress.settled:
            return
        with self._cond:
            for _ in range(progress.settled):
                self._queue.popleft()
            self._done += progress.settled
            for kind, count in progress.written.items():
                self._written[kind] += count
            self._refused += len(progress.refused)
            self._state = "writing"
            self.last_error = None
            self.last_written_at = time.time()
            done = self._done
            self._cond.notify_all()
        if self.spool is not None:
            self.spool.retire(done)

    def _write_isolating(self, batch: list[Record], progress: _Round) -> None:
        """Write ``batch`` in order; a row refused for its content (``ROW_ERRORS``) is
        isolated by halving the batch and recorded in ``progress.refused``. A transient error
        propagates, with ``progress.settled`` counting the leading rows already settled."""
        try:
            counts = self._write(batch)
        except ROW_ERRORS as error:
            if len(batch) == 1:
                progress.refused.append((batch[0], _first_line(error)))
                progress.settled += 1
                return
            half = len(batch) // 2
            self._write_isolating(batch[:half], progress)
            self._write_isolating(batch[half:], progress)
            return
        for kind, count in counts.items():
            progress.written[kind] += count
        progress.settled += len(batch)

    def _write(self, batch: list[Record]) -> dict[str, int]:
        """One transaction: predictions first, then outcomes, in chunks of ``batch_size``."""
        grouped: dict[type, list[dict[str, Any]]] = {Prediction: [], Outcome: []}
        for record in batch:
            grouped[type(record)].append(_row(record))
        with self.engine.begin() as connection:
            for kind, rows in grouped.items():
                for start in range(0, len(rows), self.batch_size):
                    insert_ignoring_duplicates(
                        connection, TABLES[kind], rows[start : start + self.batch_size]
                    )
        return {"predictions": len(grouped[Prediction]), "outcomes": len(grouped[Outcome])}

    def _set_aside(self, refused: list[tuple[Record, str]]) -> None:
        """Rows the database refuses go, synced, to this log's ``refused-*.jsonl`` (never
        replayed by itself: a person looks at the reason first) or, without a spool folder,
        to the error log. An ``OSError`` here restarts the writer with the rows kept."""
        reason = refused[0][1]
        if self.spool_dir is None:
            log.error("prediction log: %d rows refused and dropped: %s", len(refused), reason)
            return
        if self._refused_path is None:
            self._refused_path = self.spool_dir / f"refused-{uuid.uuid4().hex}.jsonl"
        data = b"".join(set_aside_line(record, why) for record, why in refused)
        fd = os.open(self._refused_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        log.error(
            "prediction log: %d rows refused, set aside in %s: %s",
            len(refused),
            self._refused_path,
            reason,
        )


def _backoff(failures: int) -> float:
    return min(MAX_RETRY_SECONDS, 0.1 * 2**failures)


def _first_line(error: BaseException) -> str:
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
