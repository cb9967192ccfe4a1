"""A statement of 200k entries streams in flat memory, as CSV and as JSON (SPEC §19):
a server-side cursor under the entries, the one CSV writer (or JSON in chunks) above."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from modelfaucet.adapters.db.tables import accounts, ledger_postings, ledger_transactions
from modelfaucet.domain.ledger import OwnerScope, SystemAccount
from modelfaucet.http.routers.statements import statement_json
from modelfaucet.services import statements
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.statements import Statement

ENTRIES = 200_000
CHUNK = 10_000
START = datetime(2031, 1, 1, tzinfo=UTC)
# Generous: the entries alone would take well over 100 MB as Python objects.
PEAK_BOUND_BYTES = 24 * 1024 * 1024


def _bulk_insert(ctx: ServiceContext) -> str:
    with ctx.unit_of_work() as uow:
        wallet = uow.ledger.ensure(OwnerScope.PLATFORM, "platform")
        contra = uow.ledger.ensure(OwnerScope.SYSTEM, SystemAccount.ADJUSTMENT_CONTRA)
        uow.commit()
    with ctx.db.transaction() as conn:
        for offset in range(0, ENTRIES, CHUNK):
            numbers = range(offset, min(offset + CHUNK, ENTRIES))
            at = [START + timedelta(seconds=i) for i in numbers]
            ids = [f"00000000-0000-4000-8000-{i:012d}" for i in numbers]
            conn.execute(
                ledger_transactions.insert(),
                [
                    {"id": t, "reason": "usage_platform_revenue", "reference_type": "usage_event",
                     "reference_id": f"req-{i}", "created_at": moment}
                    for t, i, moment in zip(ids, numbers, at, strict=True)
                ],
            )  # fmt: skip
            conn.execute(
                ledger_postings.insert(),
                [
                    {"transaction_id": t, "account_id": account, "amount_units": amount,
                     "reason": "usage_platform_revenue", "created_at": moment}
                    for t, moment in zip(ids, at, strict=True)
                    for account, amount in ((wallet, 18_900), (contra, -18_900))
                ],
            )  # fmt: skip
        conn.execute(update(accounts).where(accounts.c.id == wallet).values(balance_units=18_900 * ENTRIES))
        conn.execute(update(accounts).where(accounts.c.id == contra).values(balance_units=-18_900 * ENTRIES))
    return wallet


def _measure(ctx: ServiceContext, wallet: str, render: Callable[[Statement], Iterator[bytes]]) -> tuple[int, int, int]:
    of = statements.statement_of(ctx, wallet, start=START, end=START + timedelta(days=30))
    tracemalloc.start()
    try:
        size = largest = 0
        with statements.open_statement(ctx, of) as statement:
            for chunk in render(statement):
                size += len(chunk)
                largest = max(largest, len(chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return size, largest, peak


@pytest.mark.slow
def test_a_200k_entry_statement_streams_in_flat_memory_as_csv_and_as_json(ctx: ServiceContext) -> None:
    wallet = _bulk_insert(ctx)
    renderers: dict[str, Callable[[Statement], Iterator[bytes]]] = {
        "csv": statements.statement_csv,
        "json": statement_json,
    }
    for name, render in renderers.items():
        started = time.perf_counter()
        size, largest, peak = _measure(ctx, wallet, render)
        elapsed = time.perf_counter() - started
        print(f"\n200k-entry {name} statement: {size / 1e6:.1f} MB in {elapsed:.1f}s, traced peak {peak / 1e6:.1f} MB")
        assert size > 100 * ENTRIES
        assert largest < 256 * 1024
        assert peak < PEAK_BOUND_BYTES, f"{name}: peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB statement"
