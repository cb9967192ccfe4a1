"""GroupCommit's coroutine API: items handed to the workers once per loop turn, outcomes
handed back to the event loop once per batch."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

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


def counted_hand_overs(gate: Gate) -> tuple[GroupCommit[int, int], list[int]]:
    """A GroupCommit over ``gate`` and the size of each hand-over to its queue, in order."""
    commit: GroupCommit[int, int] = GroupCommit(gate, name="test", max_batch=500)
    handed: list[int] = []
    real = commit._enqueue

    def counted(entries):  # type: ignore[no-untyped-def]
        handed.append(len(entries))
        real(entries)

    commit._enqueue = counted  # type: ignore[method-assign]
    return commit, handed


class Paired:
    """A batch function whose first two batches must run at the same time: each waits for
    the other at a barrier (a worker that took every item would leave it waiting, and the
    test fails on its timeout). Records the batch sizes."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.both_running = threading.Barrier(2, timeout=5)

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.sizes.append(len(items))
        if len(self.sizes) <= 2:
            self.both_running.wait()
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
    commit, handed = counted_hand_overs(gate)

    async def main() -> list[int]:
        return await asyncio.gather(*(commit.run(n) for n in range(64)))

    try:
        results = asyncio.run(main())
    finally:
        commit.close()
    assert results == [n * 2 for n in range(64)]
    assert handed == [64]
    assert [len(batch) for batch in gate.batches] == [64]


def test_run_many_callers_share_the_hand_over_of_their_loop_turn() -> None:
    """Single holds and batches arrive through ``run_many``: their items join the same
    per-turn hand-over as ``run``'s, each caller's items together and in order."""
    gate = Gate()
    commit, handed = counted_hand_overs(gate)

    async def main() -> list[Any]:
        singles = [commit.run_many([n]) for n in range(30)]
        return await asyncio.gather(*singles, commit.run_many([100, 101, 102]), commit.run(7), commit.run_many([]))

    try:
        results = asyncio.run(main())
    finally:
        commit.close()
    assert results == [*([n * 2] for n in range(30)), [200, 202, 204], 14, []]
    assert handed == [34]
    assert gate.batches == [[*range(30), 100, 101, 102, 7]]


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


def test_several_workers_share_the_items_in_flight_instead_of_one_taking_them_all() -> None:
    """Two workers, 40 items queued at once: each batch takes at most half of what is in
    flight, so both workers write at the same time (the barrier needs both batches running
    together: a worker that took all 40 would leave it waiting) and every item is answered.
    One worker still takes everything in one batch."""
    paired = Paired()
    commit: GroupCommit[int, int] = GroupCommit(paired, name="test", max_batch=500, workers=2)
    try:
        futures = commit.submit_many(list(range(40)))
        assert [future.result(timeout=10) for future in futures] == [n * 2 for n in range(40)]
    finally:
        commit.close()
    assert sorted(paired.sizes) == [20, 20]
    assert commit._in_flight == 0  # every answered item left the count

    alone = Gate()
    single: GroupCommit[int, int] = GroupCommit(alone, name="test", max_batch=500)
    try:
        assert [f.result(timeout=10) for f in single.submit_many(list(range(40)))] == [n * 2 for n in range(40)]
    finally:
        single.close()
    assert [len(batch) for batch in alone.batches] == [40]


def test_a_failed_batch_leaves_the_in_flight_count() -> None:
    def explode(items: Sequence[int]) -> list[int]:
        raise RuntimeError("database gone")

    commit: GroupCommit[int, int] = GroupCommit(explode, name="test", workers=2)
    try:
        futures = commit.submit_many(list(range(10)))
        for future in futures:
            with pytest.raises(RuntimeError):
                future.result(timeout=10)
    finally:
        commit.close()
    assert commit._in_flight == 0


class WatchedQueue:
    """A SimpleQueue that counts the threads inside ``get`` at once."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.inside = 0
        self.most = 0
        self.lock = threading.Lock()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            return self.inner.get(block, timeout)
        finally:
            with self.lock:
                self.inside -= 1

    def get_nowait(self) -> Any:
        return self.get(False)

    def put(self, item: Any) -> None:
        self.inner.put(item)

    def empty(self) -> bool:
        return bool(self.inner.empty())


def busy(seconds: float) -> None:
    """Hold the interpreter lock for about ``seconds`` (a batch's Python work)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_one_worker_at_a_time_takes_from_the_queue() -> None:
    """SimpleQueue.get with a timeout can block for good on CPython 3.11 and 3.12 when
    another thread takes the item its caller was woken for (reproduced on this machine):
    the workers take their batches one at a time, so no two are ever inside ``get``."""

    def work(items: Sequence[int]) -> list[int]:
        busy(0.001)
        return list(items)

    commit: GroupCommit[int, int] = GroupCommit(work, name="test", workers=3, idle_seconds=0.5)
    watched = WatchedQueue(commit._queue)
    commit._queue = watched  # type: ignore[assignment]
    try:
        for round_ in range(30):
            futures = commit.submit_many(list(range(round_ % 7 + 1)))
            assert [f.result(timeout=10) for f in futures] == list(range(round_ % 7 + 1))
            time.sleep(0.003)  # the workers wait for work, each of them in turn
    finally:
        commit.close()
    assert watched.most == 1


def test_callers_keep_being_answered_with_several_workers_under_load() -> None:
    """Two workers sharing the items in flight, closed-loop callers on four threads,
    batches that hold the interpreter lock, pauses that empty the queue: every caller is
    answered, each within seconds, and nothing is left counted in flight (about one second
    of load)."""

    def work(items: Sequence[int]) -> list[int]:
        busy(0.002)
        return [item + 1 for item in items]

    commit: GroupCommit[int, int] = GroupCommit(work, name="test", workers=2, max_wait_seconds=0.002)
    answered = [0] * 4
    failures: list[BaseException] = []

    def caller(k: int) -> None:
        try:
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                assert commit.submit(k).result(timeout=5) == k + 1
                answered[k] += 1
                if answered[k] % 5 == 0:
                    time.sleep(0.03)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        commit.close()
    assert not failures, failures
    assert all(count > 0 for count in answered)
    assert commit._in_flight == 0


def test_a_second_batch_starts_only_when_the_load_fills_both() -> None:
    """``min_share`` 32, two workers. 40 items in flight are not enough for two batches of
    32: the first batch takes 32 and the other 8 wait for it, as with one worker (a light
    load is not cut into batches too small to pay their fixed cost). 70 items are: two
    batches of 35 run at the same time."""
    gate = Gate(hold_first=True)
    light: GroupCommit[int, int] = GroupCommit(gate, name="test", workers=2, min_share=32)
    try:
        futures = light.submit_many(list(range(40)))
        assert gate.started.wait(5)
        time.sleep(0.2)  # a second worker free to start would have started by now
        assert gate.batches == []  # the first batch is still held, and no other ran
        gate.release.set()
        assert [f.result(timeout=10) for f in futures] == [n * 2 for n in range(40)]
    finally:
        light.close()
    assert [len(batch) for batch in gate.batches] == [32, 8]

    paired = Paired()
    heavy: GroupCommit[int, int] = GroupCommit(paired, name="test", workers=2, min_share=32)
    try:
        futures = heavy.submit_many(list(range(70)))
        assert [f.result(timeout=10) for f in futures] == [n * 2 for n in range(70)]
    finally:
        heavy.close()
    assert sorted(paired.sizes) == [35, 35]
