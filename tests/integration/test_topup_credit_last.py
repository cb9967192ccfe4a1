"""A Stripe top-up's credit moves the hot balances last (issue 16, B7), on SQLite and PostgreSQL.

Every credit moves the same Stripe clearing row, and every top-up of a wallet the same
wallet row; their row locks last from the balance UPDATE to the end of COMMIT. So the
credit writes everything else first and moves the two balances as the last statements
before COMMIT (``SqlLedger.post_at_commit``), without changing what it decides: the
balance bound still refuses, overdue holds still expire, concurrent credits still land
exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, update

from modelfaucet.adapters.db.tables import accounts, holds, ledger_postings
from modelfaucet.domain.holds import HoldStatus
from modelfaucet.domain.ledger import MAX_BALANCE_UNITS
from modelfaucet.domain.outcomes import InvalidRequest
from modelfaucet.services.checkout import CheckoutCreated
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.holds import HoldOutcome, PlaceHold, apply_holds
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import SeedResult
from modelfaucet.services.stripe_webhook import WebhookOutcome, handle_stripe_webhook
from tests.stripe_support import counts, event_bytes, pending_topup, session_user, topup_status

FIVE_USD = 500_000_000


def deliver(ctx: ServiceContext, payload: bytes) -> WebhookOutcome:
    outcome = handle_stripe_webhook(ctx, payload=payload, signature_header=None)
    assert isinstance(outcome, WebhookOutcome)
    return outcome


def account(ctx: ServiceContext, account_id: str) -> Any:
    with ctx.db.read() as conn:
        return conn.execute(select(accounts).where(accounts.c.id == account_id)).one()


@contextmanager
def first_transaction_statements(ctx: ServiceContext) -> Iterator[list[str]]:
    """The statements of the first transaction committed inside the block, in order (the
    audit chain's own transaction after it is left out)."""
    seen: list[str] = []
    done: list[bool] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if not done:
            seen.append(" ".join(sql.split()))

    def commit(_conn: Any) -> None:
        done.append(True)

    event.listen(ctx.db.engine, "before_cursor_execute", statement)
    event.listen(ctx.db.engine, "commit", commit)
    try:
        yield seen
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", statement)
        event.remove(ctx.db.engine, "commit", commit)


def touches_accounts(sql: str) -> bool:
    """A statement that moves a balance or locks an account row."""
    upper = sql.upper()
    return "UPDATE ACCOUNTS" in upper or ("FROM ACCOUNTS" in upper and "FOR " in upper and " UPDATE" in upper)


def writes_other_rows(sql: str) -> bool:
    upper = sql.upper()
    return upper.startswith(("INSERT", "UPDATE", "DELETE")) and not touches_accounts(sql)


def test_a_credit_moves_the_wallet_and_clearing_balances_as_the_last_statements_before_commit(
    ctx: ServiceContext, seeded: SeedResult, db_url: str
) -> None:
    user = session_user(ctx, seeded)
    warm, measured = pending_topup(ctx, user, FIVE_USD), pending_topup(ctx, user, FIVE_USD)
    deliver(ctx, event_bytes(session_id=warm.checkout_session_id, event_id="evt_warm"))  # clearing exists now
    wallet_before = account(ctx, seeded.end_user_wallet_id).balance_units

    with first_transaction_statements(ctx) as statements:
        result = deliver(ctx, event_bytes(session_id=measured.checkout_session_id, event_id="evt_measured"))

    assert result.outcome == "credited"
    hot = [i for i, sql in enumerate(statements) if touches_accounts(sql)]
    others = [i for i, sql in enumerate(statements) if writes_other_rows(sql)]
    assert hot and others, statements
    # Nothing locks or moves an account before the event, top-up, ledger, answer and audit
    # rows are written, and the balance moves are the very last statements.
    assert min(hot) > max(others), statements
    assert hot == list(range(len(statements) - len(hot), len(statements))), statements
    # PostgreSQL: both balances in one statement; SQLite: one UPDATE each (its writers
    # are serialised by BEGIN IMMEDIATE anyway).
    assert len(hot) == (1 if db_url.startswith("postgresql") else 2), statements
    assert account(ctx, seeded.end_user_wallet_id).balance_units == wallet_before + FIVE_USD
    assert reconcile_ledger(ctx).ok


def test_a_credit_past_the_balance_limit_is_refused_at_commit_and_keeps_nothing(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    topup = pending_topup(ctx, session_user(ctx, seeded), FIVE_USD)
    wallet = seeded.end_user_wallet_id
    with ctx.db.transaction() as conn:  # a wallet one credit away from the bound
        conn.execute(update(accounts).where(accounts.c.id == wallet).values(balance_units=MAX_BALANCE_UNITS - 1))
    before = counts(ctx)
    with ctx.db.read() as conn:
        postings_before = len(conn.execute(select(ledger_postings.c.id)).all())
    payload = event_bytes(session_id=topup.checkout_session_id, event_id="evt_past_limit")

    with pytest.raises(InvalidRequest, match="supported limit"):
        deliver(ctx, payload)

    assert counts(ctx) == before  # no event, answer, transaction or status move kept
    with ctx.db.read() as conn:
        assert len(conn.execute(select(ledger_postings.c.id)).all()) == postings_before
    assert topup_status(ctx, topup.checkout_session_id) == "pending"
    assert account(ctx, wallet).balance_units == MAX_BALANCE_UNITS - 1
    # Nothing was stored, so the same event credits once the wallet can take it.
    with ctx.db.transaction() as conn:
        conn.execute(update(accounts).where(accounts.c.id == wallet).values(balance_units=0))
    assert deliver(ctx, payload).outcome == "credited"
    assert account(ctx, wallet).balance_units == FIVE_USD


def overdue_hold(ctx: ServiceContext, seeded: SeedResult, amount_units: int) -> tuple[str, ServiceContext]:
    """A hold on the seeded wallet, and a context whose clock is past its expiry."""
    command = PlaceHold("overdue", "app_pub_demo", "demo-user-1", "customer_reply", amount_units, 1)
    [placed] = apply_holds(ctx, [command])
    assert isinstance(placed, HoldOutcome) and placed.hold is not None
    assert placed.hold.account_id == seeded.end_user_wallet_id
    expires_at = placed.hold.expires_at
    later = ServiceContext(db=ctx.db, settings=ctx.settings, clock=lambda: expires_at + timedelta(seconds=1))
    return placed.hold.id, later


def hold_status(ctx: ServiceContext, hold_id: str) -> str:
    with ctx.db.read() as conn:
        return str(conn.execute(select(holds.c.status).where(holds.c.id == hold_id)).scalar_one())


def test_a_credit_still_expires_the_wallets_overdue_holds(ctx: ServiceContext, seeded: SeedResult) -> None:
    topup = pending_topup(ctx, session_user(ctx, seeded), FIVE_USD)
    wallet = seeded.end_user_wallet_id
    before = account(ctx, wallet).balance_units
    hold_id, later = overdue_hold(ctx, seeded, 2 * 10**8)
    assert account(ctx, wallet).reserved_units == 2 * 10**8

    assert deliver(later, event_bytes(session_id=topup.checkout_session_id)).outcome == "credited"

    assert hold_status(ctx, hold_id) == HoldStatus.EXPIRED.value
    state = account(ctx, wallet)
    assert (state.balance_units, state.reserved_units) == (before + FIVE_USD, 0)
    assert reconcile_ledger(later).ok


def test_concurrent_credits_and_duplicates_on_one_wallet_each_credit_once(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    user = session_user(ctx, seeded)
    topups: list[CheckoutCreated] = [pending_topup(ctx, user, FIVE_USD) for _ in range(8)]
    wallet = seeded.end_user_wallet_id
    before = account(ctx, wallet).balance_units
    # An overdue hold too: the first credit to see it locks the wallet early and expires
    # it, while the others wait on their balance move, none deadlocking with it.
    hold_id, later = overdue_hold(ctx, seeded, 10**8)
    payloads = [
        event_bytes(session_id=t.checkout_session_id, event_id=f"evt_storm_{n}_{copy}")
        for n, t in enumerate(topups)
        for copy in range(2)  # two different events for each session
    ] * 2  # and each event delivered twice
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda payload: deliver(later, payload), payloads))

    assert sum(1 for r in results if r.outcome == "credited" and not r.duplicate) == len(topups)
    assert {r.outcome for r in results} <= {"credited", "already_credited"}
    assert counts(ctx)["topup_transactions"] == len(topups)
    state = account(ctx, wallet)
    assert (state.balance_units, state.reserved_units) == (before + len(topups) * FIVE_USD, 0)
    assert hold_status(ctx, hold_id) == HoldStatus.EXPIRED.value
    assert reconcile_ledger(later).ok
