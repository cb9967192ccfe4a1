"""Refunds and disputes from Stripe's webhooks, on SQLite and PostgreSQL (SPEC §20).

The offline provider pays, refunds and disputes a session as Stripe would; its events are
delivered to the webhook service. The wallet that the top-up credited gives back what it
still holds, the rest is posted to ``uncollected_usage``, and the books — balances,
transactions, provenance — stay reconciled. Each Stripe object and amount posts once.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from modelfaucet.adapters.db.tables import ledger_postings, ledger_transactions
from modelfaucet.adapters.stripe.offline import Simulation
from modelfaucet.domain.identity import new_id
from modelfaucet.domain.ledger import SystemAccount
from modelfaucet.domain.outcomes import NotFound
from modelfaucet.services.checkout import CheckoutCreated
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.reconciliation_provenance import stripe_reversals_tie_to_postings
from modelfaucet.services.seed import SeedResult
from modelfaucet.services.stripe_reversals import PAYMENT_NOT_FOUND_MESSAGE
from tests.stripe_support import (
    assert_books_reconcile,
    balance_of,
    deliver_event,
    paid_topup,
    pending_topup,
    session_user,
    simulate,
    spend,
    sync,
    sync_counts,
    system_balance,
)

USD = 100_000_000
CENT = 1_000_000


@pytest.fixture
def topup(ctx: ServiceContext, seeded: SeedResult) -> CheckoutCreated:
    """The demo end user (10.00 opening balance) topped up 5.00, paid and credited."""
    return paid_topup(ctx, session_user(ctx, seeded), 5 * USD)


def test_a_refund_after_the_credits_were_spent_empties_the_wallet_and_posts_the_rest_uncollected(
    ctx: ServiceContext,
    seeded: SeedResult,
    client: TestClient,
    gateway_headers: dict[str, str],
    topup: CheckoutCreated,
) -> None:
    assert spend(client, gateway_headers, "10.00", "call-1") == "2.00000000"  # 13.00 retail of 15.00

    refunded = deliver_event(ctx, simulate(ctx, Simulation.REFUND, topup.checkout_session_id))

    assert (refunded.outcome, refunded.wallet_units, refunded.uncollected_units) == (  # type: ignore[union-attr]
        "refund_posted",
        2 * USD,
        3 * USD,
    )
    assert balance_of(ctx, seeded.end_user_wallet_id) == 0, "never below zero"
    assert system_balance(ctx, SystemAccount.UNCOLLECTED_USAGE) == -3 * USD
    assert system_balance(ctx, SystemAccount.STRIPE_CLEARING) == 0
    assert_books_reconcile(ctx)
    # The developer and provider legs of the spent credits stay paid.
    assert balance_of(ctx, seeded.developer_wallet_id) > 0


def test_partial_refunds_arrive_as_growing_totals_and_post_their_increases(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    first = deliver_event(ctx, simulate(ctx, Simulation.REFUND, topup.checkout_session_id, 120))
    second = deliver_event(ctx, simulate(ctx, Simulation.REFUND, topup.checkout_session_id, 80))
    third = deliver_event(ctx, simulate(ctx, Simulation.REFUND, topup.checkout_session_id))  # the rest: 300

    assert [e.outcome for e in (first, second, third)] == ["refund_posted"] * 3
    assert [e.wallet_units for e in (first, second, third)] == [120 * CENT, 80 * CENT, 300 * CENT]  # type: ignore[union-attr]
    assert balance_of(ctx, seeded.end_user_wallet_id) == 10 * USD
    assert sync_counts(ctx)["reversal_postings"] == 3
    assert_books_reconcile(ctx)


def test_a_refund_event_replayed_with_a_new_event_id_debits_nothing_more(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    event = simulate(ctx, Simulation.REFUND, topup.checkout_session_id, 200)
    deliver_event(ctx, event)
    before = sync_counts(ctx)

    replayed = deliver_event(ctx, event, event_id="evt_resent_by_stripe")

    assert replayed.outcome == "unchanged"
    assert sync_counts(ctx) == before
    assert balance_of(ctx, seeded.end_user_wallet_id) == 13 * USD
    assert_books_reconcile(ctx)


def test_concurrent_deliveries_of_one_refund_under_different_event_ids_debit_once(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    event = simulate(ctx, Simulation.REFUND, topup.checkout_session_id, 250)
    start = threading.Barrier(4)

    def deliver(n: int) -> str:
        start.wait(timeout=30)
        return str(deliver_event(ctx, event, event_id=f"evt_copy_{n}").outcome)

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(deliver, range(4)))

    assert outcomes == ["refund_posted", "unchanged", "unchanged", "unchanged"]
    assert balance_of(ctx, seeded.end_user_wallet_id) == 15 * USD - 250 * CENT
    assert_books_reconcile(ctx)


def test_a_dispute_won_after_being_lost_re_credits_the_wallet(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    opened = deliver_event(ctx, simulate(ctx, Simulation.DISPUTE, topup.checkout_session_id))
    lost = deliver_event(ctx, simulate(ctx, Simulation.DISPUTE_LOST, topup.checkout_session_id))
    assert balance_of(ctx, seeded.end_user_wallet_id) == 10 * USD
    won = deliver_event(ctx, simulate(ctx, Simulation.DISPUTE_WON, topup.checkout_session_id))

    assert [e.outcome for e in (opened, lost, won)] == ["dispute_debited", "dispute_lost", "dispute_reinstated"]
    assert balance_of(ctx, seeded.end_user_wallet_id) == 15 * USD
    assert system_balance(ctx, SystemAccount.STRIPE_CLEARING) == -5 * USD, "Stripe holds the money again"
    assert_books_reconcile(ctx)


def test_a_refund_for_a_payment_whose_webhook_was_lost_waits_for_the_sync(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    topup = pending_topup(ctx, session_user(ctx, seeded), 5 * USD)
    simulate(ctx, Simulation.COMPLETE, topup.checkout_session_id)  # lost
    refund = simulate(ctx, Simulation.REFUND, topup.checkout_session_id, 100)

    with pytest.raises(NotFound) as unknown:
        deliver_event(ctx, refund)  # 404: Stripe retries
    assert unknown.value.message == PAYMENT_NOT_FOUND_MESSAGE
    sync(ctx)  # credits the session and learns its PaymentIntent
    retried = deliver_event(ctx, refund)

    assert retried.outcome == "refund_posted"
    assert balance_of(ctx, seeded.end_user_wallet_id) == 15 * USD - 100 * CENT
    assert_books_reconcile(ctx)


def test_reconciliation_names_a_forged_refund_transaction(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    deliver_event(ctx, simulate(ctx, Simulation.REFUND, topup.checkout_session_id, 100))
    with ctx.reader() as uow:
        assert stripe_reversals_tie_to_postings(uow).ok
    forged = new_id()
    with ctx.db.transaction() as conn:
        now = conn.execute(select(ledger_transactions.c.created_at).limit(1)).scalar_one()
        conn.execute(insert(ledger_transactions).values(id=forged, reason="stripe_refund", created_at=now))
        for account_id, amount in ((seeded.end_user_wallet_id, -CENT), (seeded.platform_wallet_id, CENT)):
            conn.execute(
                insert(ledger_postings).values(
                    transaction_id=forged,
                    account_id=account_id,
                    amount_units=amount,
                    reason="stripe_refund",
                    created_at=now,
                )
            )

    with ctx.reader() as uow:
        check = stripe_reversals_tie_to_postings(uow)

    assert not check.ok
    assert [(o["transaction_id"], o["problem"]) for o in check.offending] == [
        (forged, "ledger transaction without its posting row")
    ]
