"""Helpers shared by the Stripe top-up tests (issue 3): events, signatures, pending top-ups."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import func, select

from modelfaucet.adapters.db.tables import audit_log, ledger_transactions, stripe_events, stripe_topups
from modelfaucet.adapters.stripe.signature import sign
from modelfaucet.domain.ledger import Reason
from modelfaucet.services.checkout import CheckoutCommand, CheckoutCreated, create_checkout_session
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.seed import SeedResult
from modelfaucet.services.sessions import SessionUser, create_session

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
