"""Helpers shared by the Stripe tests (issues 3 and 14): events, signatures, pending top-ups,
the offline provider's simulations, spending credits."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from modelfaucet.adapters.db.tables import (
    accounts,
    audit_log,
    ledger_transactions,
    stripe_events,
    stripe_reversal_postings,
    stripe_reversals,
    stripe_sync_runs,
    stripe_topups,
)
from modelfaucet.adapters.stripe.offline import SimulatedEvent, Simulation
from modelfaucet.adapters.stripe.signature import sign
from modelfaucet.domain.ledger import OwnerScope, Reason, SystemAccount
from modelfaucet.services.checkout import CheckoutCommand, CheckoutCreated, create_checkout_session
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.reconciliation_provenance import PROVENANCE_CHECKS
from modelfaucet.services.seed import SeedResult
from modelfaucet.services.sessions import SessionUser, create_session
from modelfaucet.services.stripe_simulate import simulate_stripe
from modelfaucet.services.stripe_sync import SyncReport, SyncStripe, sync_stripe
from modelfaucet.services.stripe_webhook import StripeEventOutcome, handle_stripe_webhook

WEBHOOK_SECRET = "whsec_test_local_not_a_secret"


def session_user(ctx: ServiceContext, seeded: SeedResult, external_user_id: str = "demo-user-1") -> SessionUser:
    return create_session(
        ctx, secret_key=seeded.app_secret_key, public_app_id=seeded.public_app_id, external_user_id=external_user_id
    ).user


def pending_topup(ctx: ServiceContext, user: SessionUser, amount_usd_units: int = 500_000_000) -> CheckoutCreated:
    created = create_checkout_session(
        ctx,
        user,
        CheckoutCommand(
            amount_units=amount_usd_units,
            success_url="https://app.example/ok",
            cancel_url="https://app.example/cancel",
        ),
    )
    return created.result


def event_bytes(
    *,
    session_id: str,
    event_id: str = "evt_test_1",
    event_type: str = "checkout.session.completed",
    amount_cents: int = 500,
    currency: str = "usd",
    payment_status: str = "paid",
) -> bytes:
    event = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "data": {
            "object": {
                "id": session_id,
                "object": "checkout.session",
                "amount_total": amount_cents,
                "currency": currency,
                "payment_status": payment_status,
                "mode": "payment",
            }
        },
    }
    return json.dumps(event, separators=(",", ":")).encode()


def signature_for(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    return sign(payload, secret, int(time.time()) if timestamp is None else timestamp)


def counts(ctx: ServiceContext) -> dict[str, int]:
    """Rows that a webhook may write, to prove a refused one wrote nothing."""
    with ctx.db.read() as conn:

        def count(table: Any, *where: Any) -> int:
            return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())

        return {
            "events": count(stripe_events),
            "topup_transactions": count(
                ledger_transactions, ledger_transactions.c.reason == Reason.STRIPE_CHECKOUT_TOPUP.value
            ),
            "credited": count(stripe_topups, stripe_topups.c.status == "credited"),
            "audit": count(audit_log),
        }


def topup_status(ctx: ServiceContext, checkout_session_id: str) -> str:
    with ctx.db.read() as conn:
        return str(
            conn.execute(
                select(stripe_topups.c.status).where(stripe_topups.c.checkout_session_id == checkout_session_id)
            ).scalar_one()
        )


# --- issue 14: the offline provider, sync, refunds and disputes ------------------------------


def simulate(
    ctx: ServiceContext, action: Simulation, session_id: str, amount_cents: int | None = None
) -> SimulatedEvent:
    """Change the offline provider's state; the event is returned, not delivered (a lost webhook)."""
    return simulate_stripe(ctx, action, session_id, amount_cents=amount_cents)


def deliver_event(ctx: ServiceContext, event: SimulatedEvent, *, event_id: str | None = None) -> StripeEventOutcome:
    """Deliver a simulated event as its webhook (optionally re-sent under another event id)."""
    body = event.as_event() | ({"id": event_id} if event_id else {})
    return handle_stripe_webhook(ctx, payload=json.dumps(body).encode(), signature_header=None)


def sync(ctx: ServiceContext, *, dry_run: bool = False) -> SyncReport:
    return sync_stripe(ctx, SyncStripe(dry_run=dry_run), actor=Actor("operator"))


def paid_topup(ctx: ServiceContext, user: SessionUser, amount_units: int = 500_000_000) -> CheckoutCreated:
    """A top-up paid in the offline Stripe and credited by its webhook."""
    topup = pending_topup(ctx, user, amount_units)
    deliver_event(ctx, simulate(ctx, Simulation.COMPLETE, topup.checkout_session_id))
    return topup


def spend(client: TestClient, gateway_headers: dict[str, str], upstream_usd: str, request_id: str) -> str:
    """The demo end user spends credits on a model call (retail = upstream x 1.3); the new balance."""
    response = client.post(
        "/v1/usage/events",
        json={
            "request_id": request_id,
            "public_app_id": "app_pub_demo",
            "external_user_id": "demo-user-1",
            "feature_key": "customer_reply",
            "route_mode": "platform",
            "provider": "mock",
            "model": "mock-small",
            "input_tokens": 1,
            "output_tokens": 1,
            "cached_tokens": 0,
            "upstream_cost_usd": upstream_usd,
        },
        headers=gateway_headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["end_user_balance_usd"])


def balance_of(ctx: ServiceContext, account_id: str) -> int:
    with ctx.db.read() as conn:
        return int(conn.execute(select(accounts.c.balance_units).where(accounts.c.id == account_id)).scalar_one())


def system_balance(ctx: ServiceContext, account: SystemAccount) -> int:
    with ctx.db.read() as conn:
        found = conn.execute(
            select(accounts.c.balance_units).where(
                (accounts.c.owner_scope == OwnerScope.SYSTEM.value) & (accounts.c.owner_id == account.value)
            )
        ).scalar_one_or_none()
    return 0 if found is None else int(found)


def sync_counts(ctx: ServiceContext) -> dict[str, int]:
    """Rows a sync, a refund or a dispute may write, to prove one wrote nothing (or once)."""
    with ctx.db.read() as conn:

        def count(table: Any, *where: Any) -> int:
            return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())

        return {
            "transactions": count(ledger_transactions),
            "credited": count(stripe_topups, stripe_topups.c.status == "credited"),
            "failed": count(stripe_topups, stripe_topups.c.status == "failed"),
            "audit": count(audit_log),
            "sync_runs": count(stripe_sync_runs),
            "reversals": count(stripe_reversals),
            "reversal_postings": count(stripe_reversal_postings),
        }


def assert_books_reconcile(ctx: ServiceContext) -> None:
    """Balanced books: the report (every wallet, every check) and the provenance checks pass."""
    report = reconcile_ledger(ctx)
    assert report.ok, report.as_dict()
    with ctx.reader(snapshot=True) as uow:
        failing = {check.name: check.offending for check in (c(uow) for c in PROVENANCE_CHECKS) if not check.ok}
    assert failing == {}
