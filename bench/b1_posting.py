"""B1: the posting engine in-process — usage events from 64 concurrent asyncio tasks.

Each task awaits its own event's future, exactly as the HTTP handler does
(``await asyncio.wrap_future(engine.submit(event))``). Baselines, in the same run on the
same database: the same rows written by plain SQL through the same driver, (a) one
transaction per event, (b) in the engine's own mean batch size.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import usage_events
from modelfaucet.config import Settings
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.posting_engine import PostingEngine
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.record_usage import UsageStatus

from .common import Figure, fresh_database
from .plain_sql import PlainWriter
from .usage_data import UsageWorld, event, prepare

TASKS = 64


def run_engine(world: UsageWorld, *, tag: str, count: int, tasks: int = TASKS) -> tuple[float, float]:
    """events/s and the mean batch size of ``count`` events from ``tasks`` concurrent tasks."""
    db = Database.from_url(world.url)
    ctx = ServiceContext(db=db, settings=Settings(database_url=world.url))
    engine = PostingEngine(ctx)
    todo = [event(tag, n) for n in range(count)]
    feed = iter(todo)

    async def caller() -> None:
        for item in feed:
            outcome = await asyncio.wrap_future(engine.submit(item))
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


def check_reconciles(url: str) -> None:
    db = Database.from_url(url)
    report = reconcile_ledger(ServiceContext(db=db, settings=Settings(database_url=url)))
    db.dispose()
    if not report.ok:
        raise RuntimeError(f"B1 data does not reconcile: {[c.name for c in report.checks if not c.ok]}")


def run(engine_name: str, *, quick: bool) -> list[Figure]:
    count = 10_000 if quick else 100_000
    per_event_count = 1_000 if quick else 5_000
    with fresh_database(engine_name, "b1") as url:
        world = prepare(url)
        run_engine(world, tag="warm", count=1_000)  # connections, caches, plans
        engine_rate, mean_batch = run_engine(world, tag="b1", count=count)
        batch = max(1, round(mean_batch))
        plain_a = run_plain(world, tag="plain-a", count=per_event_count, batch=1)
        plain_b = run_plain(world, tag="plain-b", count=count, batch=batch)
        check_reconciles(url)
    gated = not quick and engine_name == "postgresql"
    notes = {"events": count, "tasks": TASKS, "mean_batch": round(mean_batch, 1)}
    return [
        Figure(
            "B1",
            engine_name,
            "posting engine, 64 tasks (events/s)",
            engine_rate,
            "ev/s",
            baseline=plain_b,
            baseline_label=f"plain SQL, batches of {batch}",
            target="≥ 15,000 ev/s and ≥ 0.4× baseline (b)",
            met=(engine_rate >= 15_000 and engine_rate >= 0.4 * plain_b) if gated else None,
            notes=notes,
        ),
        Figure(
            "B1",
            engine_name,
            "  same, vs plain SQL 1 txn/event",
            engine_rate,
            "ev/s",
            baseline=plain_a,
            baseline_label="plain SQL, one transaction per event",
            notes={"baseline_events": per_event_count},
        ),
    ]
