"""Micro-batching without timing: a scoring thread held on an event shows which requests wait
together, and so form the next batch."""

from __future__ import annotations

import asyncio
import threading

import pytest

from retraining_assets.service.batching import BatcherStoppedError, MicroBatcher

DEADLINE = 30.0  # only for a failing test


class HeldScorer:
    """Doubles its items; holds the first batch until released, recording every batch."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.holding = threading.Event()
        self.release = threading.Event()
        self.fail = fail

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.holding.set()
            assert self.release.wait(DEADLINE)
        if self.fail:
            raise RuntimeError("no model can be served")
        return [item * 2 for item in items]


async def _queued(batcher: MicroBatcher, n: int) -> None:
    """Let the event loop run until ``n`` requests wait in the queue (no clock involved)."""
    while batcher._queue is None or batcher._queue.qsize() < n:
        await asyncio.sleep(0)


async def _hold_first(batcher: MicroBatcher, scorer: HeldScorer) -> asyncio.Task:
    first = asyncio.create_task(batcher.submit(0))
    assert await asyncio.to_thread(scorer.holding.wait, DEADLINE)
    return first


async def _waiting(
    batcher: MicroBatcher, scorer: HeldScorer, n: int
) -> tuple[asyncio.Task, list[asyncio.Task]]:
    """Start ``batcher``, hold its first request in the scorer, queue ``n`` more behind it."""
    await batcher.start()
    first = await _hold_first(batcher, scorer)
    rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, n + 1)]
    await _queued(batcher, n)
    return first, rest


def test_requests_waiting_together_are_scored_in_one_call_up_to_max_batch() -> None:
    scorer = HeldScorer()

    async def scenario() -> list[int]:
        batcher = MicroBatcher(scorer, max_batch=4)
        first, rest = await _waiting(batcher, scorer, 6)
        scorer.release.set()
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        assert (batcher.batches, batcher.items) == (3, 7)
        return results

    assert asyncio.run(scenario()) == [0, 2, 4, 6, 8, 10, 12]
    assert scorer.batches == [[0], [1, 2, 3, 4], [5, 6]]


def test_max_batch_one_scores_every_request_alone() -> None:
    scorer = HeldScorer()

    async def scenario() -> None:
        batcher = MicroBatcher(scorer, max_batch=1)
        first, rest = await _waiting(batcher, scorer, 3)
        scorer.release.set()
        await asyncio.gather(first, *rest)
        await batcher.stop()

    asyncio.run(scenario())
    assert scorer.batches == [[0], [1], [2], [3]]


def test_stop_scores_what_is_queued_and_refuses_new_requests() -> None:
    scorer = HeldScorer()

    async def scenario() -> None:
        batcher = MicroBatcher(scorer, max_batch=8)
        first, queued = await _waiting(batcher, scorer, 3)
        stopping = asyncio.create_task(batcher.stop())
        await asyncio.sleep(0)
        with pytest.raises(BatcherStoppedError):
            await batcher.submit(9)
        scorer.release.set()
        await stopping
        assert await asyncio.gather(first, *queued) == [0, 2, 4, 6]

    asyncio.run(scenario())


def test_a_failing_batch_fails_each_of_its_requests_and_cancelled_ones_are_skipped() -> None:
    scorer = HeldScorer(fail=True)

    async def scenario() -> None:
        batcher = MicroBatcher(scorer, max_batch=8)
        await batcher.start()
        first = await _hold_first(batcher, scorer)
        gone = asyncio.create_task(batcher.submit(1))
        waiting = asyncio.create_task(batcher.submit(2))
        await _queued(batcher, 2)
        gone.cancel()  # the client went away before its batch was scored
        scorer.release.set()
        for task in (first, waiting):
            with pytest.raises(RuntimeError, match="no model can be served"):
                await task
        await batcher.stop()

    asyncio.run(scenario())
    assert scorer.batches == [[0], [2]]


def test_whole_jobs_run_on_the_scoring_thread() -> None:
    async def scenario() -> str:
        batcher = MicroBatcher(lambda items: items, max_batch=2)
        await batcher.start()
        name = await batcher.run(lambda: threading.current_thread().name)
        await batcher.stop()
        return name

    assert asyncio.run(scenario()).startswith("scoring")
