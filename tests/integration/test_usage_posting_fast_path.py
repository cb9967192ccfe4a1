"""The fast path of usage posting (issue 7) keeps every property of the slow one.

- the batching window adapts: a lone caller never waits for company; concurrent callers
  are still grouped;
- the credit-only account ids remembered by the engine are the ones in the database;
- many rows go in by COPY on PostgreSQL, and a duplicate there is still an IntegrityError;
- the end-user wallets of a batch move in one guarded statement that fails loud.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from modelfaucet.adapters.db.bulk import insert_many
from modelfaucet.adapters.db.tables import ledger_transactions
from modelfaucet.domain.identity import new_id
from modelfaucet.domain.ledger import OwnerScope, Posting, Reason, Transaction
from modelfaucet.domain.money import parse_usd
from modelfaucet.domain.outcomes import LedgerInvariantViolation
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.posting_engine import PostingEngine
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.record_usage import AccountIds, record_usage_batch
from modelfaucet.services.seed import DEMO_OPENING_UNITS, SeedResult

from .usage_support import balance, event, fund_end_user, posting_count, usage_count

RETAIL = 136_500


def test_a_lone_caller_does_not_wait_for_the_batching_window(ctx: ServiceContext, seeded: SeedResult) -> None:
    engine = PostingEngine(ctx, max_wait_seconds=2.0)
    started = time.monotonic()
    for n in range(3):
        assert engine.submit(event(f"lone-{n}")).result(30).status == "recorded"
    elapsed = time.monotonic() - started
    engine.close()
    assert elapsed < 2.0, f"three sequential events took {elapsed:.2f} s: the window was waited"
    assert engine.batches_posted == 3


def test_events_queued_together_are_posted_in_one_batch(ctx: ServiceContext, seeded: SeedResult) -> None:
    fund_end_user(ctx, seeded, "many", parse_usd("5"))
    engine = PostingEngine(ctx)
    futures = engine.submit_many([event(f"many-{n}", external_user_id="many") for n in range(40)])
    assert [f.result(60).status for f in futures] == ["recorded"] * 40
    engine.close()
    assert engine.batches_posted == 1
    assert engine.events_posted == 40
    assert reconcile_ledger(ctx).ok


def test_the_remembered_account_ids_are_the_stored_ones(ctx: ServiceContext, seeded: SeedResult) -> None:
    ids = AccountIds()
    first = record_usage_batch(ctx, [event("ids-1")], account_ids=ids)
    second = record_usage_batch(ctx, [event("ids-2")], account_ids=ids)  # served from memory
    assert [o.status for o in first + second] == ["recorded", "recorded"]
    assert ids.get(("platform", "platform")) == seeded.platform_wallet_id
    assert ids.get(("provider_cost", "provider_cost")) == seeded.provider_cost_wallet_id
    assert ids.get(("developer", seeded.developer_id)) == seeded.developer_wallet_id
    assert balance(ctx, seeded.platform_wallet_id) == 2 * 18_900
    assert balance(ctx, seeded.end_user_wallet_id) == DEMO_OPENING_UNITS - 2 * RETAIL
    assert reconcile_ledger(ctx).ok


def test_a_big_batch_goes_in_by_the_bulk_path_and_reconciles(ctx: ServiceContext, seeded: SeedResult) -> None:
    count = 48
    outcomes = record_usage_batch(ctx, [event(f"bulk-{n}") for n in range(count)])
    assert [o.status for o in outcomes] == ["recorded"] * count
    assert usage_count(ctx) == count
    assert posting_count(ctx) == 4 * count
    assert balance(ctx, seeded.end_user_wallet_id) == DEMO_OPENING_UNITS - count * RETAIL
    balances_after = [o.receipt.end_user_balance_units for o in outcomes if o.receipt]
    assert balances_after == sorted(balances_after, reverse=True)
    again = record_usage_batch(ctx, [event(f"bulk-{n}") for n in range(count)])
    assert {o.status for o in again} == {"duplicate"}
    assert usage_count(ctx) == count
    assert reconcile_ledger(ctx).ok


def test_a_duplicate_key_in_a_bulk_insert_is_an_integrity_error_and_writes_nothing(ctx: ServiceContext) -> None:
    now = ctx.clock()
    rows = [(new_id(), "bench", now) for _ in range(3)]
    rows.append(rows[0])
    with pytest.raises(IntegrityError), ctx.db.transaction() as conn:
        insert_many(conn, ledger_transactions, ("id", "reason", "created_at"), rows)
    with ctx.db.read() as conn:
        assert conn.execute(ledger_transactions.select()).all() == []
    with ctx.db.transaction() as conn:  # the connection pool is still usable
        conn.execute(insert(ledger_transactions), [{"id": new_id(), "reason": "ok", "created_at": now}])


def test_moving_a_locked_wallet_below_its_balance_fails_loud(ctx: ServiceContext, seeded: SeedResult) -> None:
    wallet, platform = seeded.end_user_wallet_id, seeded.platform_wallet_id
    overdraft = DEMO_OPENING_UNITS + 1
    reason = Reason.USAGE_RETAIL_PRICE.value
    debit = Transaction.of(
        reason, [Posting.debit(wallet, overdraft, reason), Posting.credit(platform, overdraft, reason)]
    )
    with pytest.raises(LedgerInvariantViolation), ctx.unit_of_work() as uow:
        uow.ledger.lock_wallets(OwnerScope.END_USER, [seeded.end_user_id])
        uow.ledger.post_many([debit], decided=[wallet])
    assert balance(ctx, wallet) == DEMO_OPENING_UNITS
