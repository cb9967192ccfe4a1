"""Lazy hold expiry (SPEC §18) on every write that touches an end user's wallet, on the
in-memory unit of work: an overdue hold must never understate ``available`` for the write
that comes before the sweep. Each test places an overdue hold straight into the books and
runs one write path: adjustment debit, top-up credit, Stripe refund, Stripe dispute (lost,
then won), hold placement and void. The same rule runs on SQLite and PostgreSQL in
``tests/e2e/test_holds_http.py`` (an admin debit, a void of an overdue hold) and in the
model-based ledger test.

Payouts reserve developer wallets, which never carry holds (a hold is only placed on an
end user's wallet); ``run_payouts`` runs the same expiry hook, a no-op for them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelfaucet.domain.holds import HoldStatus
from modelfaucet.domain.ledger import SystemAccount
from modelfaucet.domain.outcomes import InvalidState
from modelfaucet.services.apply_adjustment import Direction, apply_adjustment
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.holds import VoidHold, VoidOutcome, apply_holds
from modelfaucet.services.repositories import HoldRecord
from modelfaucet.services.stripe_reversals import ReversalApplied
from tests.fakes.memory import MemoryStore
from tests.stripe_memory_support import (
    Clock,
    books_balance,
    charge,
    completed,
    credited,
    deliver,
    dispute,
    end_user,
    memory_ctx,
    pending,
    system_balance,
)
from tests.unit.test_adjustment_rules import OPERATOR, command

USD = 100_000_000
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def ctx(store: MemoryStore, clock: Clock) -> ServiceContext:
    return memory_ctx(store, clock)


def overdue_hold(store: MemoryStore, wallet_id: str, units: int, *, hold_id: str = "hold-1") -> HoldRecord:
    """A held hold of ``units`` on the wallet whose expiry passed a minute ago, reserved."""
    account = store.state.accounts[wallet_id]
    hold = HoldRecord(
        id=hold_id,
        request_id=f"req-{hold_id}",
        request_hash="h",
        account_id=wallet_id,
        app_id="app-1",
        end_user_id=account.owner_id,
        amount_units=units,
        status=HoldStatus.HELD,
        created_at=NOW - timedelta(minutes=6),
        expires_at=NOW - timedelta(minutes=1),
    )
    store.state.holds.holds[hold.id] = hold
    account.reserved_units += units
    return hold


def assert_expired(store: MemoryStore, wallet_id: str, hold: HoldRecord) -> None:
    assert store.state.holds.holds[hold.id].status is HoldStatus.EXPIRED
    assert store.state.holds.holds[hold.id].ended_at == NOW
    assert store.state.accounts[wallet_id].reserved_units == 0


def test_an_adjustment_debit_sees_the_balance_the_overdue_hold_no_longer_reserves(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    user = end_user(store, opening_units=10 * USD)
    hold = overdue_hold(store, user.account_id, 9 * USD)
    # Only 1.00 would be available while the overdue hold still counted.
    apply_adjustment(ctx, command(user.account_id, Direction.DEBIT, 8 * USD), actor=OPERATOR)
    assert store.balance_of(user.account_id) == 2 * USD
    assert_expired(store, user.account_id, hold)


def test_a_top_up_credit_expires_the_wallets_overdue_holds(store: MemoryStore, ctx: ServiceContext) -> None:
    user = end_user(store, opening_units=1 * USD)
    hold = overdue_hold(store, user.account_id, 1 * USD)
    topup = pending(ctx, user, 5 * USD, key="key-topup-1")
    deliver(ctx, "evt_paid", "checkout.session.completed", completed(topup))
    assert store.balance_of(user.account_id) == 6 * USD
    assert_expired(store, user.account_id, hold)


def test_a_refund_takes_from_the_wallet_what_the_overdue_hold_no_longer_reserves(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    user = end_user(store)
    credited(ctx, user, 5 * USD)
    hold = overdue_hold(store, user.account_id, 4 * USD)
    applied = deliver(ctx, "evt_refund", "charge.refunded", charge(500))
    assert isinstance(applied, ReversalApplied)
    # With the hold still counted the wallet would pay 1.00 and 4.00 would go uncollected.
    assert (applied.wallet_units, applied.uncollected_units) == (5 * USD, 0)
    assert system_balance(store, SystemAccount.UNCOLLECTED_USAGE) == 0
    assert_expired(store, user.account_id, hold)
    assert books_balance(store) == 0


def test_a_lost_dispute_and_its_reinstatement_expire_the_overdue_holds(store: MemoryStore, ctx: ServiceContext) -> None:
    user = end_user(store)
    credited(ctx, user, 5 * USD)
    first = overdue_hold(store, user.account_id, 3 * USD)
    debited = deliver(ctx, "evt_d1", "charge.dispute.created", dispute(500, "needs_response"))
    assert isinstance(debited, ReversalApplied)
    assert (debited.wallet_units, debited.uncollected_units) == (5 * USD, 0)
    assert_expired(store, user.account_id, first)
    # The reinstatement (a credit) is a write to the wallet too.
    # The wallet is empty now: credit it something a second hold can reserve.
    adjust = command(user.account_id, Direction.CREDIT, 2 * USD)
    apply_adjustment(ctx, adjust, actor=OPERATOR)
    second = overdue_hold(store, user.account_id, 2 * USD, hold_id="hold-2")
    deliver(ctx, "evt_d2", "charge.dispute.closed", dispute(500, "won"))
    assert store.balance_of(user.account_id) == 7 * USD
    assert_expired(store, user.account_id, second)
    assert books_balance(store) == 0


def test_a_void_in_a_batch_answers_an_overdue_hold_expired_and_releases_it_once(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    user = end_user(store, opening_units=10 * USD)
    hold = overdue_hold(store, user.account_id, 6 * USD)
    outcomes = apply_holds(ctx, [VoidHold(hold.id), VoidHold(hold.id)])
    assert all(isinstance(o, VoidOutcome) and isinstance(o.error, InvalidState) for o in outcomes)
    assert_expired(store, user.account_id, hold)
