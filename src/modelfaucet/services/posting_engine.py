"""Group commit for usage events: many concurrent callers, one database transaction per batch.

Callers :meth:`PostingEngine.submit` events and get one :class:`concurrent.futures.Future`
per event. A worker thread takes the first waiting event plus everything already queued,
and hands the batch to
:func:`~modelfaucet.services.record_usage.record_usage_batch`, which decides each event
and writes them all in one transaction touching each account row once. Every future then
receives its own outcome (or the batch's exception: a failure is loud, never swallowed).

Several workers (``workers``; the application runs :data:`DEFAULT_WORKERS_POSTGRES` on
PostgreSQL, 1 on SQLite, whose writers are serialised anyway) each take their own batch
from the one queue, each on its own connection: while one worker's batch waits on the
database, another rates and builds rows in Python.
They decide in the database exactly as two API processes would.

The batching window adapts to the load: the engine expects about as many events as the
previous batch held (the callers it just answered will mostly come back) and waits up to
``max_wait_seconds`` for them, never longer. A lone caller therefore never waits (its
previous batch held one event), while 64 concurrent callers are posted 64 at a time. Under
heavy load, events that arrive while a batch is being written simply form the next batch.

Nothing correctness depends on lives here: the queue only groups work. Duplicates, balance
checks and locks are all decided in the database transaction, so several API processes
(each with its own engine) on one PostgreSQL stay correct. The worker is started on first
use and exits after ``idle_seconds`` without work, so an idle process holds no thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future

from ..domain.outcomes import ServiceUnavailable
from .context import ServiceContext
from .record_usage import AccountIds, UsageEvent, UsageOutcome, record_usage_batch

_Item = tuple[UsageEvent, "Future[UsageOutcome]"]
_STOP = None  # queued by close(), once per worker: post what came before it, then exit
DEFAULT_WORKERS_POSTGRES = 2


class PostingEngine:
    def __init__(
        self,
        ctx: ServiceContext,
        *,
        max_batch: int = 500,
        max_wait_seconds: float = 0.002,
        idle_seconds: float = 2.0,
        workers: int = 1,
    ) -> None:
        self.ctx = ctx
        if workers < 1:
            raise ValueError("the posting engine needs at least one worker")
        self.workers = workers
        self.max_batch = max_batch
        self.max_wait_seconds = max_wait_seconds
        self.idle_seconds = idle_seconds
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running: list[threading.Thread] = []
        self._closed = False
        self.account_ids = AccountIds()
        self.batches_posted = 0
        self.events_posted = 0
        self._counted = threading.Lock()

    def submit(self, event: UsageEvent) -> Future[UsageOutcome]:
        return self.submit_many([event])[0]

    def submit_many(self, events: Sequence[UsageEvent]) -> list[Future[UsageOutcome]]:
        futures: list[Future[UsageOutcome]] = [Future() for _ in events]
        with self._lock:
            if self._closed:
                raise ServiceUnavailable("The service is shutting down; retry the usage report.")
            for event, future in zip(events, futures, strict=True):
                self._queue.put((event, future))
            while len(self._running) < self.workers:
                worker = threading.Thread(target=self._run, name="usage-posting", daemon=True)
                self._running.append(worker)
                worker.start()
        return futures

    def close(self, timeout: float = 10.0) -> None:
        """Post everything already queued, then stop the worker (application shutdown)."""
        with self._lock:
            self._closed = True
            running = list(self._running)
            for _ in running:
                self._queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for worker in running:
            worker.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        me = threading.current_thread()
        expected = 1  # events the next batch waits for (this worker's previous batch's size)
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._running.remove(me)
                        return
                continue
            if first is _STOP:
                break
            batch = [first]
            expected = min(expected, self.max_batch)
            deadline = time.monotonic() + self.max_wait_seconds
            while len(batch) < self.max_batch:
                # Wait (bounded) only until the expected number arrived; then take just
                # what is already queued.
                remaining = deadline - time.monotonic() if len(batch) < expected else 0.0
                try:
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            expected = len(batch)
            self._post(batch)
        with self._lock:
            if me in self._running:
                self._running.remove(me)

    def _post(self, batch: list[_Item]) -> None:
        live = [(event, future) for event, future in batch if future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            outcomes = record_usage_batch(self.ctx, [event for event, _ in live], account_ids=self.account_ids)
        except BaseException as exc:  # every caller must learn of the failure
            for _, future in live:
                future.set_exception(exc)
            return
        with self._counted:
            self.batches_posted += 1
            self.events_posted += len(live)
        for (_, future), outcome in zip(live, outcomes, strict=True):
            future.set_result(outcome)
