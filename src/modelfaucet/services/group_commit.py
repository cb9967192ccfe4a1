"""Group commit: many concurrent callers, one database transaction per batch.

:class:`GroupCommit` wraps a batch function ``run_batch(items) -> outcomes`` (one outcome
per item, in order, decided and written in ONE unit of work). Callers :meth:`submit` items
and get one :class:`concurrent.futures.Future` each. A worker thread takes the first
waiting item plus everything already queued (up to ``max_batch``), runs the batch, and
gives every future its own outcome, or the batch's exception (a failure is loud, never
swallowed).

The batching window adapts to the load: the worker expects about as many items as the
previous batch held (the callers it just answered mostly come back) and waits up to
``max_wait_seconds`` for them, never longer. A lone caller therefore never waits, while 32
concurrent callers are written 32 at a time; items that arrive while a batch is being
written form the next one.

Asynchronous callers (the HTTP handlers) ``await`` :meth:`run` / :meth:`run_many` instead:
their results are handed to their event loop with ONE ``call_soon_threadsafe`` per loop per
batch, where a ``concurrent.futures.Future`` per item wrapped by ``asyncio.wrap_future``
costs a wake-up of the loop per item (measured: 53 µs of CPU per item against 11 µs, 64
callers). In the other direction, the items of all the coroutines that call :meth:`run`
in one turn of the event loop reach the queue in one hand-over at the end of that turn:
put one by one, each item woke a worker waiting for its batch to fill, and the worker and
the loop traded the interpreter lock once per item (B1, 64 callers, the same machine: CPU
per event 373 µs before, 237–273 µs after). A caller cancelled before its batch starts is
not run, as with a cancelled future.

Nothing correctness depends on lives here: the queue only groups work. Idempotency,
balance checks and locks are decided inside the batch's transaction, so several API
processes (each with its own workers) on one PostgreSQL stay correct, and no lock is held
while a caller waits. The worker starts on first use and exits after ``idle_seconds``
without work, so an idle process holds no thread. With ``workers`` > 1, that many workers
take batches from the one queue, so one batch's Python work overlaps another's database
work (the usage engine runs two on PostgreSQL). They take their batches one at a time (on
CPython 3.11 and 3.12 a ``SimpleQueue.get`` with a timeout can block for good when two
threads wait on it, see :meth:`GroupCommit._take`); a batch takes an even share of the items
in flight, and one more batch starts while others are written only if every batch would hold
at least ``min_share`` items.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

from ..domain.outcomes import ServiceUnavailable

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

_STOP = None  # queued by close(): run what came before it, then exit

# Who waits for an item: a thread's future, or an asyncio future with the loop it lives on.
Waiter = Future[Outcome] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[Outcome]"]


class GroupCommit(Generic[Item, Outcome]):
    def __init__(
        self,
        run_batch: Callable[[Sequence[Item]], Sequence[Outcome]],
        *,
        name: str,
        max_batch: int = 500,
        max_wait_seconds: float = 0.002,
        idle_seconds: float = 2.0,
        workers: int = 1,
        min_share: int = 1,
    ) -> None:
        if workers < 1:
            raise ValueError(f"{name} needs at least one worker")
        self.run_batch = run_batch
        self.workers = workers
        self.min_share = min_share
        self.name = name
        self.max_batch = max_batch
        self.max_wait_seconds = max_wait_seconds
        self.idle_seconds = idle_seconds
        self._queue: queue.SimpleQueue[tuple[Item, Waiter[Outcome]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._taking = threading.Lock()  # held by the one worker taking a batch from the queue
        self._changed = threading.Condition(self._lock)  # items queued or a batch posted
        self._posting = 0  # batches being written now
        self._running: list[threading.Thread] = []
        self._closed = False
        # Items of coroutine callers not handed to the queue yet, per event loop (each list
        # is touched only in its loop's own thread).
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[Item, Waiter[Outcome]]]] = {}
        self._counted = threading.Lock()
        self.batches = 0
        self.items = 0
        # Items queued or being written, not answered yet: with several workers, a batch
        # takes at most its share of them (see _share and _take).
        self._in_flight = 0

    def submit(self, item: Item) -> Future[Outcome]:
        return self.submit_many([item])[0]

    def submit_many(self, items: Sequence[Item]) -> list[Future[Outcome]]:
        """Queue ``items`` together (they are taken in order, in as few batches as
        ``max_batch`` allows); one future each."""
        futures: list[Future[Outcome]] = [Future() for _ in items]
        self._enqueue(list(zip(items, futures, strict=True)))
        return futures

    async def run(self, item: Item) -> Outcome:
        """:meth:`submit` for a coroutine: the item's outcome (or the batch's exception)."""
        [future] = self._collect([item])
        return await future

    async def run_many(self, items: Sequence[Item]) -> list[Outcome]:
        """:meth:`submit_many` for a coroutine: the outcomes in order."""
        futures = self._collect(items)
        if len(futures) == 1:
            return [await futures[0]]
        return list(await asyncio.gather(*futures))

    def _collect(self, items: Sequence[Item]) -> list[asyncio.Future[Outcome]]:
        """A future per item, the items queued at the end of this turn of the running loop.

        The items of every coroutine that calls :meth:`run` or :meth:`run_many` in one turn
        of the event loop reach the workers together, at the end of that turn (one hand-over
        to the queue instead of one per call: each item put while a worker waits for the
        batch to fill would wake it, and the two threads would trade the interpreter lock
        once per call)."""
        if self._closed:
            raise ServiceUnavailable("The service is shutting down; retry the request.")
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Outcome]] = [loop.create_future() for _ in items]
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._hand_over, loop)
        pending.extend((item, (loop, future)) for item, future in zip(items, futures, strict=True))
        return futures

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """Queue the items :meth:`_collect` gathered in this turn of ``loop`` (in its thread)."""
        entries = self._pending.pop(loop, [])
        try:
            self._enqueue(entries)
        except BaseException as exc:  # closed meanwhile: every caller learns it
            for _, waiter in entries:
                if isinstance(waiter, tuple) and not waiter[1].done():
                    waiter[1].set_exception(exc)

    def _enqueue(self, entries: list[tuple[Item, Waiter[Outcome]]]) -> None:
        with self._lock:
            if self._closed:
                raise ServiceUnavailable("The service is shutting down; retry the request.")
            self._in_flight += len(entries)
            for entry in entries:
                self._queue.put(entry)
            self._changed.notify_all()
            while len(self._running) < self.workers:
                worker = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._running.append(worker)
                worker.start()

    def close(self, timeout: float = 10.0) -> None:
        """Run everything already queued, then stop the workers (application shutdown)."""
        with self._lock:
            self._closed = True
            running = list(self._running)
            for _ in running:
                self._queue.put(_STOP)
            self._changed.notify_all()
        deadline = time.monotonic() + timeout
        for worker in running:
            worker.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        me = threading.current_thread()
        expected = 1  # items the next batch waits for (this worker's previous batch's size)
        while True:
            with self._taking:
                taken = self._take(expected)
            if taken is None:  # idle: this worker has exited the running list
                return
            batch, stopping = taken
            if batch:
                expected = len(batch)
                self._post(batch)
            if stopping:
                break
        with self._lock:
            if me in self._running:
                self._running.remove(me)

    def _take(self, expected: int) -> tuple[list[tuple[Item, Waiter[Outcome]]], bool] | None:
        """The next batch and whether a stop came with it; None after ``idle_seconds``
        without work (the worker then leaves). Called by one worker at a time
        (``_taking``): on CPython 3.11 and 3.12, ``SimpleQueue.get`` with a timeout can
        block for good when several threads wait on the queue. Seen here: a worker with a
        batch in hand sat in ``get(timeout=0.002)`` for minutes, its thread waiting on a
        futex with no timeout, and its callers waited forever (by all appearances the
        remaining timeout of a waiter whose item another thread took goes negative, which
        the C code then waits as "no timeout"); a short script reproduces it on 3.11.7 and
        3.12.1, not on 3.13.0.

        While other batches are being written, a worker starts one more only when enough
        items are in flight for every batch to hold ``min_share`` of them; under a lighter
        load the items wait for the batch being written, as with one worker."""
        with self._lock:
            while self._posting and self._in_flight < (self._posting + 1) * self.min_share and not self._closed:
                self._changed.wait(self.idle_seconds)
        try:
            first = self._queue.get(timeout=self.idle_seconds)
        except queue.Empty:
            with self._lock:
                if self._queue.empty():
                    self._running.remove(threading.current_thread())
                    return None
            return [], False
        if first is _STOP:
            return [], True
        batch = [first]
        limit = self._share()
        expected = min(expected, limit)
        deadline = time.monotonic() + self.max_wait_seconds
        while len(batch) < limit:
            # Wait (bounded) only until the expected number arrived; then take just
            # what is already queued.
            remaining = deadline - time.monotonic() if len(batch) < expected else 0.0
            try:
                entry = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if entry is _STOP:
                return self._posted(batch), True
            batch.append(entry)
        return self._posted(batch), False

    def _posted(self, batch: list[tuple[Item, Waiter[Outcome]]]) -> list[tuple[Item, Waiter[Outcome]]]:
        """Count ``batch`` as being written (until :meth:`_post` is done with it), before
        the taker releases ``_taking``: the next taker then sees it."""
        with self._lock:
            self._posting += 1
        return batch

    def _share(self) -> int:
        """The most items the next batch takes: all of them (up to ``max_batch``) with one
        worker; with several, an even share of the items in flight but never fewer than
        ``min_share``, so that the workers' batches overlap instead of one taking everything
        while the others wait for its callers to come back (64 callers, two workers: two
        batches of 32), while a light load is not cut into batches too small to pay their
        fixed cost (32 callers: one batch)."""
        if self.workers == 1:
            return self.max_batch
        with self._lock:
            in_flight = self._in_flight
        return min(self.max_batch, max(self.min_share, -(-in_flight // self.workers)))

    def _post(self, batch: list[tuple[Item, Waiter[Outcome]]]) -> None:
        try:
            self._post_live(batch)
        finally:
            with self._lock:
                self._in_flight -= len(batch)
                self._posting -= 1
                self._changed.notify_all()

    def _post_live(self, batch: list[tuple[Item, Waiter[Outcome]]]) -> None:
        live = [(item, waiter) for item, waiter in batch if _start(waiter)]
        if not live:
            return
        try:
            outcomes = self.run_batch([item for item, _ in live])
            if len(outcomes) != len(live):
                raise RuntimeError(f"{self.name}: {len(outcomes)} outcomes for {len(live)} items")
        except BaseException as exc:  # every caller must learn of the failure
            _settle([waiter for _, waiter in live], error=exc)
            return
        with self._counted:
            self.batches += 1
            self.items += len(live)
        _settle([waiter for _, waiter in live], outcomes=outcomes)


def _start(waiter: Waiter[Outcome]) -> bool:
    """Whether the item is still wanted (a caller cancelled before its batch is not run)."""
    if isinstance(waiter, Future):
        return waiter.set_running_or_notify_cancel()
    return not waiter[1].cancelled()


def _settle(
    waiters: Sequence[Waiter[Outcome]], *, outcomes: Sequence[Outcome] = (), error: BaseException | None = None
) -> None:
    """Hand each waiter its outcome (or ``error``): thread futures directly, asyncio futures
    through one ``call_soon_threadsafe`` per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Outcome], Outcome | None]]] = {}
    for index, waiter in enumerate(waiters):
        outcome = outcomes[index] if error is None else None
        if isinstance(waiter, Future):
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(outcome)  # type: ignore[arg-type]
        else:
            by_loop.setdefault(waiter[0], []).append((waiter[1], outcome))
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_resolve, pairs, error)


def _resolve(pairs: list[tuple[asyncio.Future[Outcome], Outcome | None]], error: BaseException | None) -> None:
    for future, outcome in pairs:
        if future.done():  # cancelled while its batch ran
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(outcome)  # type: ignore[arg-type]
