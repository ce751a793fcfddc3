"""Micro-batching: single-row requests that arrive together are scored in one model call.

Requests wait in an asyncio queue. One runner task takes everything waiting (up to
``max_batch``), hands it to the scoring thread and answers each request when its batch is done.
There is no timer: while one batch is scored the next one gathers, so batches grow with the
arrival rate and a request arriving alone is scored at once. Scoring runs on one dedicated
thread, so the event loop keeps accepting requests and models are never called concurrently;
whole jobs (the batch endpoint) queue on the same thread with ``run``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
V = TypeVar("V")
_STOP = object()


class BatcherStoppedError(RuntimeError):
    """The service is stopping; the request was not scored."""


class MicroBatcher(Generic[T, R]):
    """Collects single items into batches for ``process`` (see the module docstring)."""

    def __init__(self, process: Callable[[list[T]], list[R]], *, max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.process = process
        self.max_batch = max_batch
        self.batches = 0  # batches scored
        self.items = 0  # items scored in them
        self._queue: asyncio.Queue[Any] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = False

    async def start(self) -> None:
        """Start the runner task (in the running event loop) and the scoring thread."""
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoring")
        self._runner = asyncio.create_task(self._run(), name="micro-batcher")

    async def submit(self, item: T) -> R:
        """Score ``item`` in the next batch; its result (or the batch's exception)."""
        if self._queue is None or self._stopping:
            raise BatcherStoppedError("the prediction service is not running")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def run(self, fn: Callable[..., V], *args: Any) -> V:
        """Run ``fn(*args)`` on the scoring thread, in turn with the batches."""
        if self._executor is None or self._stopping:
            raise BatcherStoppedError("the prediction service is not running")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def stop(self) -> None:
        """Score everything already queued, then stop the runner and the thread."""
        if self._queue is None or self._stopping:
            return
        self._stopping = True
        self._queue.put_nowait(_STOP)
        if self._runner is not None:
            await self._runner
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        assert self._queue is not None
        stop = False
        while not stop:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if batch[-1] is _STOP:
                batch.pop()
                stop = True
            live = [(item, future) for item, future in batch if not future.cancelled()]
            if live:
                await self._score(live)

    async def _score(self, live: list[tuple[T, asyncio.Future[R]]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(
                self._executor, self.process, [item for item, _ in live]
            )
        except Exception as error:  # the batch's requests all get it (e.g. no champion: 503)
            for _, future in live:
                if not future.done():
                    future.set_exception(error)
            return
        self.batches += 1
        self.items += len(live)
        for (_, future), result in zip(live, results, strict=True):
            if not future.done():  # a client that went away was cancelled meanwhile
                future.set_result(result)
