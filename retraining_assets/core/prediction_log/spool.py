"""The spool: an append-only file that holds every logged row on disk before it is answered.

``append`` hands rows to the spool's sync thread and returns at once. That thread writes
everything waiting as one ``write`` and one ``fdatasync``, then marks it durable: group
commit, so one sync (~0.1-1 ms on local disks) covers every request that arrived meanwhile.
Callers wait for their sequence number (``wait``), or are told (``subscribe``) once per sync.

Rows live in segment files ``prediction-log-<ms>-<uuid>.jsonl``. A segment is deleted once
the database holds all its rows (``retire``); a process that dies leaves its segments, and
the next ``open`` reads them back (``replay``) for the database writer. Each segment is
``flock``-ed by the process that writes or replays it, so two services sharing a folder never
take each other's live segment. A torn last line (a crash in the middle of a ``write``) held
rows nobody was answered for: it is skipped with a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from retraining_assets.core.prediction_log.records import Record, decode, encode

log = logging.getLogger(__name__)
SEGMENT_BYTES = 32 * 1024 * 1024  # a new segment after this many bytes
RETRY_SECONDS = 0.2  # after a failed write or sync, before the next attempt (new segment)
Listener = Callable[[int, BaseException | None], None]


class SpoolError(OSError):
    """The spool folder cannot be used; the message names it."""


@dataclass
class _Segment:
    path: Path
    fd: int
    last_seq: int  # the sequence number of its last row (0: none yet)
    size: int = 0


class Spool:
    """Append-only segments with group commit (see the module docstring)."""

    def __init__(self, folder: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        """Create ``folder`` (``SpoolError`` names it when it cannot be written): before the
        service starts, so a bad folder is one line, not a failed startup."""
        self.folder = folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SpoolError(self._unusable(error)) from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise SpoolError(self._unusable("not writable"))
        self.segment_bytes = segment_bytes
        self._cond = threading.Condition()
        self._pending: list[tuple[list[Record], int]] = []  # (rows, seq of the last one)
        self._durable = 0  # every row up to this sequence number is synced
        self._segments: list[_Segment] = []  # the last one is written to
        self._listeners: list[Listener] = []
        self._closing = False
        self._thread: threading.Thread | None = None
        self.error: str | None = None  # the last failed write or sync, until one succeeds
        self.syncs = 0

    # --- life cycle ------------------------------------------------------------------------
    def open(self, seq: int = 0) -> list[Record]:
        """Take over the segments no live process holds and return their
        rows (to be written again; numbered ``seq + 1`` on), open a new segment, start the
        sync thread. ``SpoolError`` names the folder when it cannot be used."""
        try:
            replayed = self._take_over(seq)
            self._durable = seq + len(replayed)
            self._segments.append(self._new_segment())
        except OSError as error:
            raise SpoolError(self._unusable(error)) from None
        self._thread = threading.Thread(target=self._run, name="prediction-spool", daemon=True)
        self._thread.start()
        return replayed

    def _unusable(self, error: OSError | str) -> str:
        reason = error if isinstance(error, str) else error.strerror or str(error)
        return f"prediction spool folder {self.folder} (in RETRAIN_HOME) cannot be used: {reason}"

    def close(self, done_seq: int) -> None:
        """Sync what is waiting and stop; delete the segments whose rows are all in the
        database (``done_seq``), keep the rest for the next ``open``."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        with self._cond:
            segments, self._segments = self._segments, []
        for segment in segments:
            os.close(segment.fd)
            if segment.last_seq <= done_seq:
                segment.path.unlink(missing_ok=True)

    # --- appending and waiting -------------------------------------------------------------
    def append(self, rows: list[Record], last_seq: int) -> None:
        """Queue ``rows`` (numbered up to ``last_seq``, increasing) for the next sync."""
        with self._cond:
            if self._closing:
                raise RuntimeError("the prediction spool is closed")
            self._pending.append((rows, last_seq))
            self._cond.notify_all()

    @property
    def durable(self) -> int:
        """Every row numbered up to this is on disk."""
        with self._cond:
            return self._durable

    def wait(self, seq: int, timeout: float | None = None) -> bool:
        """Block until row ``seq`` is on disk (False: not within ``timeout``)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._durable >= seq, timeout)

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(durable_seq, None)`` after every sync, ``listener(seq, error)``
        when a write or sync fails (rows up to ``seq`` are not known to be on disk; they are
        written again to a new segment). Called on the sync thread: keep it short."""
        with self._cond:
            self._listeners.append(listener)

    def retire(self, done_seq: int) -> None:
        """Delete the full segments whose rows the database holds (up to ``done_seq``)."""
        with self._cond:
            old = [s for s in self._segments[:-1] if s.last_seq <= done_seq]
            self._segments = [s for s in self._segments if s not in old]
        for segment in old:
            os.close(segment.fd)
            segment.path.unlink(missing_ok=True)

    @property
    def segments(self) -> int:
        with self._cond:
            return len(self._segments)

    # --- the sync thread -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closing)
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
            last_seq = batch[-1][1]
            try:
                self._write(batch, last_seq)
            except OSError as error:
                self._failed(batch, last_seq, error)
                continue
            with self._cond:
                self._durable = last_seq
                self.syncs += 1
                self.error = None
                self._cond.notify_all()
                listeners = list(self._listeners)
            for listener in listeners:
                listener(last_seq, None)

    def _write(self, batch: list[tuple[list[Record], int]], last_seq: int) -> None:
        data = b"".join(encode(rows) for rows, _ in batch)
        with self._cond:
            segment = self._segments[-1]
        if segment.size and segment.size + len(data) > self.segment_bytes:
            segment = self._rotate()
        written = 0
        while written < len(data):
            written += os.write(segment.fd, data[written:])
        os.fdatasync(segment.fd)
        segment.size += len(data)
        segment.last_seq = last_seq

    def _rotate(self) -> _Segment:
        segment = self._new_segment()
        with self._cond:
            self._segments.append(segment)
        return segment

    def _failed(self, batch: list[tuple[list[Record], int]], last_seq: int, error: OSError) -> None:
        """A failed write or sync: what reached the file is unknown (a failed fsync may
        have dropped dirty pages), so the rows go to a new segment at the next attempt."""
        reason = f"{type(error).__name__}: {error}"
        log.error("prediction spool: cannot write %s: %s", self.folder, reason)
        with self._cond:
            self.error = reason
            self._pending[:0] = batch
            listeners = list(self._listeners)
            self._segments[-1].last_seq = max(self._segments[-1].last_seq, last_seq)
        for listener in listeners:
            listener(last_seq, error)
        with self._cond:
            self._cond.wait_for(lambda: self._closing, RETRY_SECONDS)
            closing = self._closing
        with contextlib.suppress(OSError):  # else the next write fails again and says why
            self._rotate()
        if closing:
            with self._cond:  # stop retrying: these rows stay in memory for the writer
                self._pending.clear()

    # --- segments --------------------------------------------------------------------------
    def _new_segment(self) -> _Segment:
        name = f"prediction-log-{time.time_ns() // 1_000_000:013d}-{uuid.uuid4().hex}.jsonl"
        path = self.folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _sync_folder(self.folder)  # the new name itself survives a power cut
        return _Segment(path, fd, last_seq=0)

    def _take_over(self, seq: int) -> list[Record]:
        """The rows of every segment in the folder that no live process holds."""
        rows: list[Record] = []
        for path in sorted(self.folder.glob("prediction-log-*.jsonl")):
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another process writes or replays it
                os.close(fd)
                continue
            found = _read_segment(path)
            rows.extend(found)
            self._segments.append(_Segment(path, fd, last_seq=seq + len(rows)))
            if found:
                log.warning("prediction spool: replaying %d rows of %s", len(found), path.name)
        return rows


def _read_segment(path: Path) -> list[Record]:
    rows: list[Record] = []
    lines = path.read_bytes().decode("utf-8", errors="replace").split("\n")
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        try:
            rows.extend(decode(line))
        except (ValueError, KeyError, TypeError) as error:
            log.warning(
                "prediction spool: %s line %d is not a complete record (%s): skipped; "
                "it was never acknowledged",
                path.name,
                number,
                error,
            )
    return rows


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
