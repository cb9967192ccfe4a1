"""GroupCommit's coroutine API: items handed to the workers once per loop turn, outcomes
handed back to the event loop once per batch."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from modelfaucet.domain.outcomes import ServiceUnavailable
from modelfaucet.services import group_commit
from modelfaucet.services.group_commit import GroupCommit


class Gate:
    """A batch function that doubles its items, optionally holding the first batch until told."""

    def __init__(self, *, hold_first: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.started = threading.Event()
        if not hold_first:
            self.release.set()

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.started.set()
        self.release.wait(5)
        self.batches.append(list(items))
        return [item * 2 for item in items]


def test_coroutine_callers_get_their_own_outcomes_with_one_loop_wake_up_per_batch() -> None:
    gate = Gate(hold_first=True)
    commit: GroupCommit[int, int] = GroupCommit(gate, name="test", max_batch=100)
    wakeups = {"n": 0}

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        real = loop.call_soon_threadsafe

        def counted(callback, *args, **kwargs):  # type: ignore[no-untyped-def]
            if callback is group_commit._resolve:  # the engine's hand-over (the executor has its own)
                wakeups["n"] += 1
            return real(callback, *args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        first = asyncio.ensure_future(commit.run(0))
        await asyncio.sleep(0)
        await asyncio.get_running_loop().run_in_executor(None, gate.started.wait, 5)
        rest = [asyncio.ensure_future(commit.run(n)) for n in range(1, 41)]  # queued behind the held batch
        await asyncio.sleep(0.05)
        gate.release.set()
        return [await first, *[await task for task in rest]]

    try:
        results = asyncio.run(main())
    finally:
        commit.close()
    assert results == [n * 2 for n in range(41)]
    assert [len(batch) for batch in gate.batches] == [1, 40]
    assert wakeups["n"] == len(gate.batches)  # not one per item


def test_a_failed_batch_reaches_every_waiting_coroutine() -> None:
    def explode(items: Sequence[int]) -> list[int]:
        raise RuntimeError("database gone")

    commit: GroupCommit[int, int] = GroupCommit(explode, name="test")

    async def main() -> list[BaseException | int]:
        return await asyncio.gather(*(commit.run(n) for n in range(5)), return_exceptions=True)

    try:
        results = asyncio.run(main())
    finally:
        commit.close()
    assert all(isinstance(result, RuntimeError) for result in results)


def test_a_caller_cancelled_before_its_batch_starts_is_not_run() -> None:
    gate = Gate(hold_first=True)
    commit: GroupCommit[int, int] = GroupCommit(gate, name="test")

    async def main() -> int:
        first = asyncio.ensure_future(commit.run(1))
        await asyncio.get_running_loop().run_in_executor(None, gate.started.wait, 5)
        doomed = asyncio.ensure_future(commit.run(99))
        await asyncio.sleep(0.01)
        doomed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await doomed
        gate.release.set()
        later = await commit.run(3)
        return await first + later

    try:
        assert asyncio.run(main()) == 8
    finally:
        commit.close()
    assert [item for batch in gate.batches for item in batch] == [1, 3]


def test_coroutines_of_one_loop_turn_reach_the_queue_in_one_hand_over() -> None:
    """64 callers resumed in the same turn of the loop hand their items to the workers at
    once: one ``_enqueue`` (and so at most one worker wake-up) per turn, not one per item."""
    gate = Gate()
    commit: GroupCommit[int, int] = GroupCommit(gate, name="test", max_batch=500)
    handed: list[int] = []
    real = commit._enqueue

    def counted(entries):  # type: ignore[no-untyped-def]
        handed.append(len(entries))
        real(entries)

    commit._enqueue = counted  # type: ignore[method-assign]

    async def main() -> list[int]:
        return await asyncio.gather(*(commit.run(n) for n in range(64)))

    try:
        results = asyncio.run(main())
    finally:
        commit.close()
    assert results == [n * 2 for n in range(64)]
    assert handed == [64]
    assert [len(batch) for batch in gate.batches] == [64]


def test_a_caller_after_close_or_before_the_hand_over_learns_of_the_shutdown() -> None:
    commit: GroupCommit[int, int] = GroupCommit(Gate(), name="test")

    async def main() -> None:
        waiting = asyncio.ensure_future(commit.run(1))  # collected, not handed over yet
        commit.close()
        with pytest.raises(ServiceUnavailable):
            await waiting
        with pytest.raises(ServiceUnavailable):
            await commit.run(2)

    asyncio.run(main())
