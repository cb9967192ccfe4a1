"""Stripe webhook → top-up credit, on SQLite and PostgreSQL (SPEC §6)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select, update

from modelfaucet.adapters.db.tables import audit_log, ledger_postings, stripe_events, stripe_topups
from modelfaucet.domain.ledger import OwnerScope, SystemAccount
from modelfaucet.domain.outcomes import InvalidRequest, InvalidState, NotFound
from modelfaucet.services.checkout import CheckoutCreated
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import SeedResult
from modelfaucet.services.stripe_webhook import TOPUP_NOT_FOUND_MESSAGE, WebhookOutcome, handle_stripe_webhook
from modelfaucet.services.wallets import list_wallets, wallet_detail
from tests.conftest import with_settings
from tests.stripe_support import (
    WEBHOOK_SECRET,
    counts,
    event_bytes,
    pending_topup,
    session_user,
    signature_for,
    topup_status,
)

FIVE_USD = 500_000_000


def deliver(ctx: ServiceContext, payload: bytes, header: str | None = None) -> WebhookOutcome:
    return handle_stripe_webhook(ctx, payload=payload, signature_header=header)


def balance(ctx: ServiceContext, wallet_id: str) -> int:
    return wallet_detail(ctx, wallet_id).wallet.balance_units


def assert_reconciled(ctx: ServiceContext) -> None:
    report = reconcile_ledger(ctx)
    assert report.ok, report.as_dict()
    assert "credited_topups_posted_once" in report.as_dict()["checks"]


@pytest.fixture
def topup(ctx: ServiceContext, seeded: SeedResult) -> CheckoutCreated:
    return pending_topup(ctx, session_user(ctx, seeded), FIVE_USD)


def test_a_paid_completion_credits_the_wallet_once_with_balanced_postings_and_an_audit_row(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    before = balance(ctx, seeded.end_user_wallet_id)
    result = deliver(ctx, event_bytes(session_id=topup.checkout_session_id))

    assert result.outcome == "credited"
    assert balance(ctx, seeded.end_user_wallet_id) == before + FIVE_USD
    assert topup_status(ctx, topup.checkout_session_id) == "credited"
    [listed] = list_wallets(ctx, owner_scope=OwnerScope.SYSTEM, owner_id=SystemAccount.STRIPE_CLEARING.value, limit=1)
    clearing = [listed.wallet]
    assert clearing[0].balance_units == -FIVE_USD
    with ctx.db.read() as conn:
        postings = conn.execute(
            select(ledger_postings.c.account_id, ledger_postings.c.amount_units, ledger_postings.c.reason).where(
                ledger_postings.c.transaction_id == result.transaction_id
            )
        ).all()
        audit = conn.execute(select(audit_log).where(audit_log.c.action == "stripe.topup_credited")).all()
    assert sorted((p.account_id, p.amount_units, p.reason) for p in postings) == sorted(
        [
            (seeded.end_user_wallet_id, FIVE_USD, "stripe_checkout_topup"),
            (clearing[0].account_id, -FIVE_USD, "stripe_checkout_topup"),
        ]
    )
    assert len(audit) == 1
    assert audit[0].resource_id == topup.topup_id
    assert audit[0].after_status == "credited"
    assert_reconciled(ctx)


def test_the_same_event_delivered_twice_credits_once_and_answers_the_stored_outcome(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    payload = event_bytes(session_id=topup.checkout_session_id)
    first = deliver(ctx, payload)
    after_first = counts(ctx)
    second = deliver(ctx, payload)

    assert second.duplicate is True
    assert second.outcome == "credited"
    assert second.transaction_id == first.transaction_id
    assert counts(ctx) == after_first
    assert after_first["topup_transactions"] == 1
    assert_reconciled(ctx)


def test_two_different_events_for_one_session_credit_once(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    before = balance(ctx, seeded.end_user_wallet_id)
    deliver(ctx, event_bytes(session_id=topup.checkout_session_id, event_id="evt_a"))
    second = deliver(
        ctx,
        event_bytes(
            session_id=topup.checkout_session_id,
            event_id="evt_b",
            event_type="checkout.session.async_payment_succeeded",
        ),
    )

    assert second.outcome == "already_credited"
    assert balance(ctx, seeded.end_user_wallet_id) == before + FIVE_USD
    assert counts(ctx)["topup_transactions"] == 1
    assert_reconciled(ctx)


def test_twenty_concurrent_deliveries_of_one_event_credit_once(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    before = balance(ctx, seeded.end_user_wallet_id)
    payload = event_bytes(session_id=topup.checkout_session_id, event_id="evt_concurrent")
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: deliver(ctx, payload), range(20)))

    assert len(results) == 20  # none refused
    assert sum(1 for r in results if not r.duplicate) == 1
    assert {r.outcome for r in results} == {"credited"}
    assert balance(ctx, seeded.end_user_wallet_id) == before + FIVE_USD
    assert counts(ctx)["topup_transactions"] == 1
    assert_reconciled(ctx)


def test_twenty_concurrent_different_events_for_one_session_credit_once(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    before = balance(ctx, seeded.end_user_wallet_id)
    payloads = [event_bytes(session_id=topup.checkout_session_id, event_id=f"evt_many_{i}") for i in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda p: deliver(ctx, p), payloads))

    outcomes = sorted(r.outcome for r in results)
    assert outcomes == ["already_credited"] * 19 + ["credited"]
    assert balance(ctx, seeded.end_user_wallet_id) == before + FIVE_USD
    assert counts(ctx)["topup_transactions"] == 1
    assert_reconciled(ctx)


MISMATCHES = [
    ("an amount one cent short", {"amount_cents": 499}, "amount_total"),
    ("an amount one cent over", {"amount_cents": 501}, "amount_total"),
    ("another currency", {"currency": "eur"}, "currency"),
]


@pytest.mark.parametrize(("case", "changes", "field"), MISMATCHES, ids=[row[0] for row in MISMATCHES])
def test_a_completion_with_a_mismatched_payment_is_refused_and_writes_nothing(
    *, ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated, case: str, changes: dict[str, Any], field: str
) -> None:
    before = counts(ctx)
    with pytest.raises(InvalidRequest, match=field):
        deliver(ctx, event_bytes(session_id=topup.checkout_session_id, **changes))
    assert counts(ctx) == before
    assert topup_status(ctx, topup.checkout_session_id) == "pending"


def test_an_unknown_checkout_session_is_not_found_with_the_message_the_replay_tool_relies_on(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    before = counts(ctx)
    with pytest.raises(NotFound) as refused:
        deliver(ctx, event_bytes(session_id="cs_test_unknown"))
    assert refused.value.message == TOPUP_NOT_FOUND_MESSAGE == "Stripe checkout top-up was not found."
    assert counts(ctx) == before


def test_an_unpaid_completion_waits_and_a_later_async_success_credits(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    before = balance(ctx, seeded.end_user_wallet_id)
    unpaid = deliver(ctx, event_bytes(session_id=topup.checkout_session_id, payment_status="unpaid"))
    assert unpaid.outcome == "awaiting_payment"
    assert topup_status(ctx, topup.checkout_session_id) == "pending"
    assert balance(ctx, seeded.end_user_wallet_id) == before

    paid = deliver(
        ctx,
        event_bytes(
            session_id=topup.checkout_session_id,
            event_id="evt_async_ok",
            event_type="checkout.session.async_payment_succeeded",
        ),
    )
    assert paid.outcome == "credited"
    assert balance(ctx, seeded.end_user_wallet_id) == before + FIVE_USD
    assert_reconciled(ctx)


@pytest.mark.parametrize("event_type", ["checkout.session.expired", "checkout.session.async_payment_failed"])
def test_expiry_or_failed_payment_marks_a_pending_topup_failed_and_it_can_no_longer_be_credited(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated, event_type: str
) -> None:
    before = balance(ctx, seeded.end_user_wallet_id)
    failed = deliver(ctx, event_bytes(session_id=topup.checkout_session_id, event_type=event_type))
    assert failed.outcome == "failed"
    assert topup_status(ctx, topup.checkout_session_id) == "failed"

    with pytest.raises(InvalidState):
        deliver(ctx, event_bytes(session_id=topup.checkout_session_id, event_id="evt_late_paid"))
    assert balance(ctx, seeded.end_user_wallet_id) == before
    assert_reconciled(ctx)


def test_expiry_after_a_credit_changes_nothing(ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated) -> None:
    deliver(ctx, event_bytes(session_id=topup.checkout_session_id))
    late = deliver(
        ctx,
        event_bytes(session_id=topup.checkout_session_id, event_id="evt_exp", event_type="checkout.session.expired"),
    )
    assert late.outcome == "unchanged"
    assert topup_status(ctx, topup.checkout_session_id) == "credited"


def test_other_event_types_are_stored_and_ignored(ctx: ServiceContext, seeded: SeedResult) -> None:
    result = deliver(ctx, event_bytes(session_id="cs_test_x", event_id="evt_other", event_type="customer.created"))
    assert result.outcome is None
    assert result.to_record() == {"received": True, "ignored": True, "event_id": "evt_other"}
    with ctx.db.read() as conn:
        stored = conn.execute(select(stripe_events).where(stripe_events.c.id == "evt_other")).one()
    assert stored.status == "ignored"
    assert stored.type == "customer.created"


def test_an_event_is_stored_with_its_raw_payload_and_outcome(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    payload = event_bytes(session_id=topup.checkout_session_id, event_id="evt_stored")
    deliver(ctx, payload)
    with ctx.db.read() as conn:
        stored = conn.execute(select(stripe_events).where(stripe_events.c.id == "evt_stored")).one()
    assert stored.payload == payload.decode()
    assert stored.status == "processed"
    assert stored.response_status == 200
    assert '"credited"' in stored.response_body


def test_with_a_secret_configured_an_unsigned_event_is_refused_and_writes_nothing(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    signed_ctx = replace(ctx, settings=with_settings(ctx.settings, stripe_webhook_secret=WEBHOOK_SECRET))
    payload = event_bytes(session_id=topup.checkout_session_id)
    before = counts(ctx)
    with pytest.raises(InvalidRequest, match="signature"):
        deliver(signed_ctx, payload)
    with pytest.raises(InvalidRequest, match="signature"):
        deliver(signed_ctx, payload, signature_for(payload, "whsec_wrong"))
    assert counts(ctx) == before

    assert deliver(signed_ctx, payload, signature_for(payload)).outcome == "credited"


def test_without_a_secret_an_unsigned_event_is_accepted(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    assert ctx.settings.stripe_webhook_secret is None
    assert deliver(ctx, event_bytes(session_id=topup.checkout_session_id)).outcome == "credited"


@pytest.mark.parametrize(
    ("case", "payload"),
    [
        ("not json", b"{nope"),
        ("a json array", b"[]"),
        ("no id", b'{"type":"checkout.session.completed","data":{"object":{"id":"cs_test_1"}}}'),
        ("no data.object", b'{"id":"evt_1","type":"checkout.session.completed","data":{}}'),
        ("invalid utf-8", b'{"id":"evt_\xff"}'),
    ],
)
def test_a_malformed_event_is_refused_and_writes_nothing(
    ctx: ServiceContext, seeded: SeedResult, case: str, payload: bytes
) -> None:
    before = counts(ctx)
    with pytest.raises(InvalidRequest):
        deliver(ctx, payload)
    assert counts(ctx) == before


def test_reconciliation_names_a_credited_topup_without_its_postings(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    with ctx.db.transaction() as conn:  # simulate a bug: credited without a ledger transaction
        conn.execute(update(stripe_topups).where(stripe_topups.c.id == topup.topup_id).values(status="credited"))
    report = reconcile_ledger(ctx)
    check = report.as_dict()["checks"]["credited_topups_posted_once"]
    assert not report.ok
    assert check["ok"] is False
    assert [item["topup_id"] for item in check["offending"]] == [topup.topup_id]


def test_reconciliation_names_a_topup_transaction_whose_topup_is_not_credited(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    result = deliver(ctx, event_bytes(session_id=topup.checkout_session_id))
    with ctx.db.transaction() as conn:
        conn.execute(update(stripe_topups).where(stripe_topups.c.id == topup.topup_id).values(status="pending"))
    check = reconcile_ledger(ctx).as_dict()["checks"]["credited_topups_posted_once"]
    assert check["ok"] is False
    assert check["offending"][0]["transaction_id"] == result.transaction_id
