"""handle_stripe_webhook: verify, store, dispatch and credit a Stripe event exactly once.

Order of decisions (each a named outcome, idempotency first):

1. The signature over the raw bytes (when a secret is configured) — else 400, nothing written.
2. The payload shape — else 400.
3. The event id: the event row is inserted with ``ON CONFLICT DO NOTHING`` in the same
   database transaction as its effects. A duplicate (replayed, or delivered concurrently
   and waiting on the first one's row lock) finds the stored outcome and answers it.
4. The event type, through :data:`HANDLERS`; other types are stored and ignored.
5. The top-up: unknown → 404 (the replay tool relies on the exact message); amount or
   currency mismatch → 400; already credited → 200, nothing more.
6. The credit: a conditional ``UPDATE … WHERE status = 'pending'`` claims the top-up, so
   of two different events for one session only one can credit; then one balanced
   transaction (wallet credit, Stripe clearing debit), the top-up's transaction id and an
   audit row — all committed with the event row, or none of it.

A refused event (4xx) writes nothing, so it can be retried or replayed once fixed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from ..adapters.db import audit, ledger
from ..adapters.db.database import Database
from ..adapters.db.tables import stripe_events, stripe_topups
from ..adapters.stripe.signature import SignatureError, secrets_from_setting, verify
from ..domain.ledger import OwnerScope, Posting, Reason, SystemAccount, Transaction
from ..domain.outcomes import InvalidRequest, InvalidState, NotFound
from .context import ServiceContext
from .topups import TOPUP_REFERENCE_TYPE

log = logging.getLogger("modelfaucet.stripe")

TOPUP_NOT_FOUND_MESSAGE = "Stripe checkout top-up was not found."
STRIPE_ACTOR = "stripe"


@dataclass(frozen=True)
class WebhookResult:
    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True)
class StripeEvent:
    id: str
    type: str
    object: dict[str, Any]


Handler = Callable[[Connection, Database, StripeEvent, datetime], dict[str, Any]]


def handle_stripe_webhook(ctx: ServiceContext, *, payload: bytes, signature_header: str | None) -> WebhookResult:
    secrets = secrets_from_setting(ctx.settings.stripe_webhook_secret)
    now = ctx.clock()
    if secrets:
        try:
            verify(
                payload,
                signature_header,
                secrets,
                now=int(now.timestamp()),
                tolerance_seconds=ctx.settings.stripe_webhook_tolerance_seconds,
            )
        except SignatureError as exc:
            raise InvalidRequest(f"Stripe webhook signature verification failed: {exc}") from None
    event = _parse(payload)

    with ctx.db.transaction() as conn:
        inserted = conn.execute(
            ctx.db.insert(stripe_events)
            .values(
                id=event.id,
                type=event.type,
                payload=payload.decode("utf-8"),
                status="processing",
                received_at=now,
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(stripe_events.c.id)
        ).first()
        # rowcount is not reliable for INSERT … ON CONFLICT on every driver; RETURNING is.
        if inserted is None:
            return _stored_outcome(conn, event.id)

        handler = HANDLERS.get(event.type)
        if handler is None:
            status, body = "ignored", {"received": True, "ignored": True, "event_id": event.id}
        else:
            status, body = "processed", handler(conn, ctx.db, event, now)
        conn.execute(
            update(stripe_events)
            .where(stripe_events.c.id == event.id)
            .values(status=status, response_status=200, response_body=json.dumps(body), processed_at=now)
        )
    return WebhookResult(200, body)


def _stored_outcome(conn: Connection, event_id: str) -> WebhookResult:
    row = conn.execute(
        select(stripe_events.c.response_status, stripe_events.c.response_body).where(stripe_events.c.id == event_id)
    ).one()
    body: dict[str, Any] = json.loads(row.response_body) if row.response_body else {"received": True}
    body["duplicate"] = True
    return WebhookResult(int(row.response_status or 200), body)


def _parse(payload: bytes) -> StripeEvent:
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("The webhook payload is not valid JSON.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The webhook payload must be a Stripe event object.")
    event_id, event_type = data.get("id"), data.get("type")
    inner = data.get("data")
    obj = inner.get("object") if isinstance(inner, dict) else None
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 255:
        raise InvalidRequest("The webhook event has no valid id.", details={"field": "id"})
    if not isinstance(event_type, str) or not 1 <= len(event_type) <= 128:
        raise InvalidRequest("The webhook event has no valid type.", details={"field": "type"})
    if not isinstance(obj, dict):
        raise InvalidRequest("The webhook event has no data.object.", details={"field": "data.object"})
    return StripeEvent(id=event_id, type=event_type, object=obj)


# --- handlers -------------------------------------------------------------------------


def _on_completed(conn: Connection, db: Database, event: StripeEvent, now: datetime) -> dict[str, Any]:
    topup = _matching_topup(conn, event)
    if event.object.get("payment_status") != "paid":
        # Delayed payment methods: completed now, paid (or failed) by a later async event.
        return _body(event, topup, outcome="awaiting_payment")
    return _credit(conn, db, event, topup, now)


def _on_async_succeeded(conn: Connection, db: Database, event: StripeEvent, now: datetime) -> dict[str, Any]:
    return _credit(conn, db, event, _matching_topup(conn, event), now)


def _on_failed(conn: Connection, _db: Database, event: StripeEvent, now: datetime) -> dict[str, Any]:
    topup = conn.execute(select(stripe_topups).where(stripe_topups.c.checkout_session_id == _session_id(event))).first()
    if topup is None:
        raise NotFound(TOPUP_NOT_FOUND_MESSAGE, details={"checkout_session_id": _session_id(event)})
    claimed = conn.execute(
        update(stripe_topups)
        .where((stripe_topups.c.id == topup.id) & (stripe_topups.c.status == "pending"))
        .values(status="failed", last_event_id=event.id, updated_at=now)
    )
    if claimed.rowcount != 1:
        # Already credited or already failed: a late or repeated event changes nothing.
        return _body(event, topup, outcome="unchanged", status=_status_of(conn, topup.id))
    audit.record(
        conn,
        now=now,
        actor=STRIPE_ACTOR,
        action="stripe.topup_failed",
        resource_type=TOPUP_REFERENCE_TYPE,
        resource_id=topup.id,
        before_status="pending",
        after_status="failed",
        amount_units=int(topup.amount_units),
        note=event.type,
        details={"event_id": event.id, "checkout_session_id": topup.checkout_session_id},
    )
    return _body(event, topup, outcome="failed", status="failed")


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _on_completed,
    "checkout.session.async_payment_succeeded": _on_async_succeeded,
    "checkout.session.async_payment_failed": _on_failed,
    "checkout.session.expired": _on_failed,
}


# --- the credit -----------------------------------------------------------------------


def _credit(conn: Connection, db: Database, event: StripeEvent, topup: Any, now: datetime) -> dict[str, Any]:
    if topup.status == "credited":
        return _body(event, topup, outcome="already_credited", status="credited")
    if topup.status != "pending":
        raise InvalidState(
            f"The checkout top-up is {topup.status}; it cannot be credited.",
            details={"checkout_session_id": topup.checkout_session_id, "status": topup.status},
        )
    claimed = conn.execute(
        update(stripe_topups)
        .where((stripe_topups.c.id == topup.id) & (stripe_topups.c.status == "pending"))
        .values(status="credited", last_event_id=event.id, credited_at=now, updated_at=now)
    )
    if claimed.rowcount != 1:
        # Another event for this session claimed it first (and committed); never twice.
        current = _status_of(conn, topup.id)
        if current == "credited":
            return _body(event, topup, outcome="already_credited", status="credited")
        raise InvalidState(
            f"The checkout top-up is {current}; it cannot be credited.",
            details={"checkout_session_id": topup.checkout_session_id, "status": current},
        )

    amount = int(topup.amount_units)
    clearing = ledger.ensure_account(conn, db.insert, OwnerScope.SYSTEM, SystemAccount.STRIPE_CLEARING.value, now=now)
    reason = Reason.STRIPE_CHECKOUT_TOPUP.value
    transaction_id = ledger.post(
        conn,
        Transaction.of(
            reason,
            [Posting.credit(topup.account_id, amount, reason), Posting.debit(clearing, amount, reason)],
            reference_type=TOPUP_REFERENCE_TYPE,
            reference_id=topup.id,
        ),
        now=now,
    )
    conn.execute(update(stripe_topups).where(stripe_topups.c.id == topup.id).values(transaction_id=transaction_id))
    audit.record(
        conn,
        now=now,
        actor=STRIPE_ACTOR,
        action="stripe.topup_credited",
        resource_type=TOPUP_REFERENCE_TYPE,
        resource_id=topup.id,
        before_status="pending",
        after_status="credited",
        amount_units=amount,
        note=event.type,
        details={
            "event_id": event.id,
            "checkout_session_id": topup.checkout_session_id,
            "wallet_id": topup.account_id,
            "transaction_id": transaction_id,
        },
    )
    log.info("stripe top-up %s credited by %s", topup.id, event.id)
    body = _body(event, topup, outcome="credited", status="credited")
    body["transaction_id"] = transaction_id
    return body


def _matching_topup(conn: Connection, event: StripeEvent) -> Any:
    """The top-up of the event's session, checked against what Stripe says was paid."""
    session_id = _session_id(event)
    topup = conn.execute(select(stripe_topups).where(stripe_topups.c.checkout_session_id == session_id)).first()
    if topup is None:
        raise NotFound(TOPUP_NOT_FOUND_MESSAGE, details={"checkout_session_id": session_id})
    amount_total = event.object.get("amount_total")
    currency = event.object.get("currency")
    if isinstance(amount_total, bool) or not isinstance(amount_total, int) or amount_total != topup.amount_cents:
        raise InvalidRequest(
            "The event's amount_total does not match the pending top-up; nothing was credited.",
            details={
                "checkout_session_id": session_id,
                "expected_amount_cents": int(topup.amount_cents),
                "received_amount_cents": amount_total if isinstance(amount_total, int) else None,
            },
        )
    if not isinstance(currency, str) or currency.lower() != topup.currency:
        raise InvalidRequest(
            "The event's currency does not match the pending top-up; nothing was credited.",
            details={"checkout_session_id": session_id, "expected_currency": topup.currency},
        )
    return topup


def _session_id(event: StripeEvent) -> str:
    session_id = event.object.get("id")
    if not isinstance(session_id, str) or not 1 <= len(session_id) <= 255:
        raise InvalidRequest("The event's checkout session has no valid id.", details={"field": "data.object.id"})
    return session_id


def _status_of(conn: Connection, topup_id: str) -> str:
    return str(conn.execute(select(stripe_topups.c.status).where(stripe_topups.c.id == topup_id)).scalar_one())


def _body(event: StripeEvent, topup: Any, *, outcome: str, status: str | None = None) -> dict[str, Any]:
    return {
        "received": True,
        "event_id": event.id,
        "outcome": outcome,
        "topup_id": topup.id,
        "checkout_session_id": topup.checkout_session_id,
        "status": status or topup.status,
    }
