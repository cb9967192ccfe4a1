"""B1: the posting engine in-process — usage events from 64 concurrent asyncio tasks.

Each task awaits its own event's outcome, exactly as the HTTP handler does
(``await engine.post(event)``). Baselines, in the same run on the
same database: the same rows written by plain SQL through the same driver, (a) one
transaction per event, (b) in the engine's own mean batch size.
"""

from __future__ import annotations

import asyncio
import threading
import time

from sqlalchemy import func, select

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import usage_events
from modelfaucet.config import Settings
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.posting_engine import DEFAULT_WORKERS_POSTGRES, PostingEngine
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.record_usage import UsageStatus

from .common import Figure, fresh_database, median
from .plain_sql import CopyWriter, PlainWriter
from .usage_data import UsageWorld, event, prepare

TASKS = 64
COPY_BATCH = 1_000


def run_engine(
    world: UsageWorld, *, tag: str, count: int, tasks: int = TASKS, workers: int | None = None
) -> tuple[float, float]:
    """events/s and the mean batch size of ``count`` events from ``tasks`` concurrent tasks
    (``workers`` posting workers; by default the application's)."""
    db = Database.from_url(world.url)
    ctx = ServiceContext(db=db, settings=Settings(database_url=world.url))
    if workers is None:
        workers = DEFAULT_WORKERS_POSTGRES if db.is_postgres else 1
    engine = PostingEngine(ctx, workers=workers)
    todo = [event(tag, n) for n in range(count)]
    feed = iter(todo)

    async def caller() -> None:
        for item in feed:
            outcome = await engine.post(item)
            if outcome.status is not UsageStatus.RECORDED:
                raise RuntimeError(f"{item.request_id}: {outcome.status} {outcome.error}")

    async def all_callers() -> None:
        await asyncio.gather(*(caller() for _ in range(tasks)))

    started = time.perf_counter()
    asyncio.run(all_callers())
    elapsed = time.perf_counter() - started
    batches = engine.batches_posted
    engine.close()
    with db.read() as conn:
        stored = conn.execute(
            select(func.count()).select_from(usage_events).where(usage_events.c.request_id.like(f"{tag}-%"))
        ).scalar_one()
    if stored != count:
        raise RuntimeError(f"B1 stored {stored} usage rows for {count} events")
    db.dispose()
    return count / elapsed, count / max(1, batches)


def run_plain(world: UsageWorld, *, tag: str, count: int, batch: int) -> float:
    writer = PlainWriter(world, tag)
    numbers = list(range(count))
    started = time.perf_counter()
    for start in range(0, count, batch):
        writer.write_batch(numbers[start : start + batch])
    elapsed = time.perf_counter() - started
    writer.close()
    return count / elapsed


def run_copy(world: UsageWorld, *, tag: str, count: int, batch: int, connections: int) -> float:
    """The lower bound: :class:`CopyWriter` batches of ``batch`` events on ``connections``
    connections (threads), each taking the next batch as it finishes one."""
    writers = [CopyWriter(world, f"{tag}{c}") for c in range(connections)]
    starts = iter(range(0, count, batch))
    lock = threading.Lock()
    failures: list[BaseException] = []

    def work(writer: CopyWriter) -> None:
        try:
            while True:
                with lock:
                    start = next(starts, None)
                if start is None:
                    return
                writer.write_batch(range(start, min(count, start + batch)))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(writer,)) for writer in writers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for writer in writers:
        writer.close()
    if failures:
        raise failures[0]
    return count / elapsed


def check_reconciles(url: str) -> None:
    db = Database.from_url(url)
    report = reconcile_ledger(ServiceContext(db=db, settings=Settings(database_url=url)))
    db.dispose()
    if not report.ok:
        raise RuntimeError(f"B1 data does not reconcile: {[c.name for c in report.checks if not c.ok]}")


def run(engine_name: str, *, quick: bool) -> list[Figure]:
    count = 10_000 if quick else 100_000
    rounds = 1 if quick else 3
    postgres = engine_name == "postgresql"
    engine_runs: list[float] = []
    copy1_runs: list[float] = []
    copy2_runs: list[float] = []
    other_runs: list[float] = []  # the other number of posting workers (1 or 2), same rounds
    other_workers = 1 if DEFAULT_WORKERS_POSTGRES != 1 else 2
    batches: list[float] = []
    with fresh_database(engine_name, "b1") as url:
        world = prepare(url)
        # No plan cliff: the first events go into an empty usage_events, on connections
        # that have never run a lookup; they must post about as fast as the warm runs.
        cold, _ = run_engine(world, tag="cold", count=count)
        # Alternate the engine and its lower bounds (the machine is shared: same-run ratios).
        for r in range(rounds):
            rate, mean_batch = run_engine(world, tag=f"b1r{r}", count=count)
            engine_runs.append(rate)
            batches.append(mean_batch)
            if postgres:
                other_runs.append(run_engine(world, tag=f"b1w{r}", count=count, workers=other_workers)[0])
                copy1_runs.append(run_copy(world, tag=f"c1r{r}-", count=count, batch=COPY_BATCH, connections=1))
                copy2_runs.append(run_copy(world, tag=f"c2r{r}-", count=count, batch=COPY_BATCH, connections=2))
        mean_batch = median(batches)
        plain = run_plain(world, tag="plain-b", count=count, batch=max(1, round(mean_batch)))
        check_reconciles(url)
    engine_rate = median(engine_runs)
    gated = not quick and postgres
    notes = {"events": count, "tasks": TASKS, "mean_batch": round(mean_batch, 1), "runs": engine_runs}
    figures: list[Figure] = []
    if postgres:
        copy2, copy1 = median(copy2_runs), median(copy1_runs)
        figures += [
            Figure(
                "B1",
                engine_name,
                "posting engine, 64 tasks (events/s)",
                engine_rate,
                "ev/s",
                baseline=copy2,
                baseline_label=f"lower bound: binary COPY + guarded set UPDATE, batches of {COPY_BATCH}, 2 conns",
                target="≥ 15,000 ev/s and ≥ 0.75× the 2-connection lower bound",
                met=(engine_rate >= 15_000 and engine_rate >= 0.75 * copy2) if gated else None,
                notes=notes | {"baseline_runs": copy2_runs},
            ),
            Figure(
                "B1",
                engine_name,
                "  same, vs lower bound on 1 conn",
                engine_rate,
                "ev/s",
                baseline=copy1,
                baseline_label=f"lower bound: binary COPY + guarded set UPDATE, batches of {COPY_BATCH}, 1 conn",
                notes={"baseline_runs": copy1_runs},
            ),
            Figure(
                "B1",
                engine_name,
                f"  same, {other_workers} posting worker{'s' if other_workers > 1 else ''}",
                median(other_runs),
                "ev/s",
                baseline=engine_rate,
                baseline_label=f"the engine above ({DEFAULT_WORKERS_POSTGRES} posting workers, the default)",
                notes={"runs": other_runs},
            ),
        ]
    figures.append(
        Figure(
            "B1",
            engine_name,
            "  same, vs old plain-SQL baseline" if postgres else "posting engine, 64 tasks (events/s)",
            engine_rate,
            "ev/s",
            baseline=plain,
            baseline_label=f"statement per row (executemany), batches of {round(mean_batch)}: not a lower bound",
            notes=notes if not postgres else {},
        )
    )
    figures.append(
        Figure(
            "B1",
            engine_name,
            "  same, into an empty usage_events",
            cold,
            "ev/s",
            baseline=engine_rate,
            baseline_label="the warm runs above (no plan cliff: same order)",
            target="≥ 0.5× warm",
            met=cold >= 0.5 * engine_rate,
        )
    )
    return figures
