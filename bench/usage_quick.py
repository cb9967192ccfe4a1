"""Quick throughput figures of the usage posting path (issue 4): events/s at 1, 8, 32 callers.

    .venv/bin/python bench/usage_quick.py [--pg postgresql://postgres@127.0.0.1:5432/mf_bench_usage]
                                          [--events 3000] [--callers 1,8,32]

For each engine and caller count, a fresh migrated database is seeded with 200 funded end
users; ``callers`` threads each post single events (the HTTP path's unit of work) either
through the group-commit engine (one shared PostingEngine, as in one API process) or
directly (one database transaction per event, the naive path), and events/s is printed.
Everything targets 127.0.0.1 and is bounded by ``--events``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from modelfaucet.adapters.db import ledger, migrate
from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.engine import make_engine, normalise_url
from modelfaucet.config import Settings
from modelfaucet.domain.ledger import OwnerScope, Posting, Reason, SystemAccount, Transaction
from modelfaucet.domain.money import UNITS_PER_USD
from modelfaucet.domain.rating import RouteMode
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.posting_engine import PostingEngine
from modelfaucet.services.record_usage import UsageEvent, _ensure_end_user, record_usage
from modelfaucet.services.seed import seed_demo_data

USERS = 200


def _pg_url(base: str, name: str) -> str:
    url = make_url(normalise_url(base))
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _prepare(url: str) -> ServiceContext:
    engine = make_engine(url, pool_size=40)
    migrate.upgrade(engine)
    ctx = ServiceContext(db=Database(engine), settings=Settings(database_url=url))
    seeded = seed_demo_data(ctx)
    now = ctx.clock()
    with ctx.db.transaction() as conn:
        equity = ledger.account_id_for(conn, OwnerScope.SYSTEM, SystemAccount.SEED_EQUITY)
        assert equity is not None
        for n in range(USERS):
            user = _ensure_end_user(conn, ctx.db, seeded.app_id, f"bench-{n}", now)
            wallet = ledger.ensure_account(conn, ctx.db.insert, OwnerScope.END_USER, user, now=now)
            reason = Reason.SEED_OPENING_BALANCE.value
            amount = 1000 * UNITS_PER_USD
            ledger.post(
                conn,
                Transaction.of(reason, [Posting.credit(wallet, amount, reason), Posting.debit(equity, amount, reason)]),
                now=now,
            )
    return ctx


def _event(tag: str, n: int) -> UsageEvent:
    return UsageEvent(
        request_id=f"{tag}-{n}",
        public_app_id="app_pub_demo",
        external_user_id=f"bench-{n % USERS}",
        feature_key="customer_reply",
        route_mode=RouteMode.PLATFORM,
        provider="mock",
        model="mock-small",
        input_tokens=1200,
        output_tokens=300,
    )


def _run(ctx: ServiceContext, callers: int, events: int, grouped: bool, tag: str) -> float:
    engine = PostingEngine(ctx)
    todo = [_event(tag, n) for n in range(events)]

    def one(e: UsageEvent) -> str:
        outcome = engine.submit(e).result(120) if grouped else record_usage(ctx, e)
        if outcome.status != "recorded":
            raise RuntimeError(f"{e.request_id}: {outcome.status} {outcome.error}")
        return outcome.status

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=callers) as pool:
        list(pool.map(one, todo))
    elapsed = time.perf_counter() - started
    return events / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--callers", default="1,8,32")
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    callers = [int(c) for c in args.callers.split(",")]
    print(f"{'engine':<11} {'path':<13} " + " ".join(f"{c:>4} callers" for c in callers))
    for engine_name in args.engines.split(","):
        for grouped in (True, False):
            figures = []
            for c in callers:
                with tempfile.TemporaryDirectory(prefix="mf-usage-bench-") as folder:
                    if engine_name == "sqlite":
                        url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
                    else:
                        url = _pg_url(args.pg, "mf_bench_usage_quick")
                    ctx = _prepare(url)
                    try:
                        figures.append(_run(ctx, c, args.events, grouped, f"c{c}"))
                    finally:
                        ctx.db.dispose()
            path = "group-commit" if grouped else "direct"
            print(f"{engine_name:<11} {path:<13} " + " ".join(f"{f:>12.0f}" for f in figures), flush=True)


if __name__ == "__main__":
    main()
