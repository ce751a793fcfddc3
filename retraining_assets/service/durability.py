"""Answer only what is on disk: requests wait here until the spool has synced their rows.

The prediction log's spool syncs on its own thread and calls ``DurableGate`` once per sync
(group commit); one ``call_soon_threadsafe`` then releases, on the event loop, every request
whose rows that sync covered. Waiting costs a request one future, never a thread.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from retraining_assets.core.prediction_log import PredictionLog

DURABLE_TIMEOUT_SECONDS = 10.0  # a spool this slow cannot be answered for: 503


class NotDurableError(RuntimeError):
    """The rows of a request could not be written to the spool; the message says why."""


class DurableGate:
    """Awaitable durability of prediction-log sequence numbers (see the module docstring)."""

    def __init__(self, log: PredictionLog) -> None:
        self.log = log
        self._loop: asyncio.AbstractEventLoop | None = None
        self._durable = 0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []  # a heap by seq
        self._order = itertools.count()

    def start(self) -> None:
        """Follow the log's syncs (call from the running event loop, after ``log.start()``)."""
        self._loop = asyncio.get_running_loop()
        self.log.subscribe(self._synced)
        self._durable = self.log.durable

    async def wait(self, seq: int) -> None:
        """Return once the rows up to ``seq`` are on disk; ``NotDurableError`` if the spool
        fails or takes longer than ``DURABLE_TIMEOUT_SECONDS``."""
        if seq <= self._durable or self._loop is None:
            return
        future = self._loop.create_future()
        heapq.heappush(self._waiting, (seq, next(self._order), future))
        try:
            await asyncio.wait_for(future, DURABLE_TIMEOUT_SECONDS)
        except TimeoutError:
            raise NotDurableError(
                f"the prediction log could not write to disk within {DURABLE_TIMEOUT_SECONDS:g}s"
            ) from None

    def _synced(self, seq: int, error: BaseException | None) -> None:
        """On the spool's thread: hand the news to the event loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._release, seq, error)

    def _release(self, seq: int, error: BaseException | None) -> None:
        if error is None:
            self._durable = max(self._durable, seq)
        while self._waiting and self._waiting[0][0] <= seq:
            _, _, future = heapq.heappop(self._waiting)
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(
                    NotDurableError(f"the prediction log cannot write to disk: {error}")
                )
