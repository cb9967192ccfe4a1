"""The offline test-mode Stripe: Checkout sessions issued and remembered locally.

Without ``STRIPE_SECRET_KEY`` this stands in for Stripe. It issues ``cs_test_…`` ids (the
same idempotency key gives the same id) and keeps its own record of every session it
opened and of what has happened to it since (``stripe_offline_sessions``, in the service's
database, written in short transactions of its own — like Stripe, it is another system
than the books). From that record it answers what Stripe's API would: the session list of
a window and single sessions, for ``modelfaucet stripe sync``; and ``modelfaucet stripe
simulate`` changes it the way a cardholder or Stripe would (pay, let expire, refund,
dispute) and gets back the event Stripe would send, to deliver as a webhook.

Like Stripe, an open session past its ``expires_at`` is reported ``expired``, and cannot be
paid any more.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select, update

from ...domain.outcomes import InvalidState, NotFound
from ...domain.stripe_sync import CHECKOUT_SESSION_LIFETIME, SessionStatus
from ..db.bulk import upsert_factory
from ..db.database import Database
from ..db.tables import stripe_offline_sessions
from .checkout import CheckoutRequest, CheckoutSession
from .sessions import StripeSession

# Offline sessions have no hosted page; this URL says so rather than pointing anywhere real.
OFFLINE_CHECKOUT_BASE = "https://checkout.stripe.test/offline/"
SESSION_NOT_FOUND = "The offline Stripe provider has no such checkout session."


class Simulation(StrEnum):
    """What ``modelfaucet stripe simulate`` can make happen to a session."""

    COMPLETE = "complete"
    EXPIRE = "expire"
    REFUND = "refund"
    DISPUTE = "dispute"
    DISPUTE_WON = "dispute-won"
    DISPUTE_LOST = "dispute-lost"


@dataclass(frozen=True, slots=True)
class SimulatedEvent:
    """The Stripe event a simulation produced: its id, type and ``data.object``."""

    id: str
    type: str
    object: dict[str, Any]
    created: int

    def as_event(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "event",
            "created": self.created,
            "livemode": False,
            "type": self.type,
            "data": {"object": self.object},
        }


class OfflineStripe:
    """Implements the Checkout provider and the session reader from its own record."""

    name = "offline"

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    # -- what the service asks of Stripe ---------------------------------------------------

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        digest = hashlib.sha256(f"offline-checkout:{request.idempotency_key}".encode()).hexdigest()
        session_id = f"cs_test_{digest[:40]}"
        now = self.clock()
        with self.db.transaction() as conn:
            conn.execute(
                upsert_factory(conn)(stripe_offline_sessions)
                .values(
                    id=session_id,
                    amount_cents=request.amount_cents,
                    currency=request.currency,
                    status=SessionStatus.OPEN.value,
                    payment_status="unpaid",
                    session_metadata=dict(request.metadata),
                    created_at=now,
                    expires_at=now + CHECKOUT_SESSION_LIFETIME,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["id"])
            )
        return CheckoutSession(id=session_id, url=OFFLINE_CHECKOUT_BASE + session_id)

    def list_sessions(self, *, created_since: datetime) -> Iterator[StripeSession]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(stripe_offline_sessions)
                .where(stripe_offline_sessions.c.created_at >= created_since)
                .order_by(stripe_offline_sessions.c.created_at, stripe_offline_sessions.c.id)
            ).all()
        now = self.clock()
        return iter([_session(row, now) for row in rows])

    def retrieve_session(self, session_id: str) -> StripeSession | None:
        with self.db.read() as conn:
            row = _row(conn, session_id)
        return None if row is None else _session(row, self.clock())

    # -- what a cardholder or Stripe does ----------------------------------------------------

    def simulate(self, action: Simulation, session_id: str, *, amount_cents: int | None = None) -> SimulatedEvent:
        """Change the session's recorded state as ``action`` would and return Stripe's event.

        Refused (nothing changed) when Stripe would not allow it: paying a session that is not
        open, refunding more than was paid, a second dispute of one payment, and so on."""
        if amount_cents is not None and amount_cents <= 0:
            raise InvalidState("The amount must be a positive number of cents.")
        now = self.clock()
        with self.db.transaction() as conn:
            row = _row(conn, session_id, for_update=True)
            if row is None:
                raise NotFound(SESSION_NOT_FOUND, details={"checkout_session_id": session_id})
            changes, event_type, stripe_object = _SIMULATIONS[action](row, now, amount_cents)
            conn.execute(
                update(stripe_offline_sessions)
                .where(stripe_offline_sessions.c.id == session_id)
                .values(**changes, updated_at=now)
            )
        return SimulatedEvent(
            id=f"evt_sim_{secrets.token_hex(12)}", type=event_type, object=stripe_object, created=int(now.timestamp())
        )


# --- the simulations: (row, now, amount) -> (changes, event type, event object) ------------

Changes = tuple[dict[str, Any], str, dict[str, Any]]


def _complete(row: Any, now: datetime, _amount: int | None) -> Changes:
    _require(_status(row, now) == SessionStatus.OPEN, row, "only an open session can be paid")
    digest = hashlib.sha256(row.id.encode()).hexdigest()[:24]
    changes = {
        "status": SessionStatus.COMPLETE.value,
        "payment_status": "paid",
        "payment_intent_id": f"pi_test_{digest}",
        "charge_id": f"ch_test_{digest}",
    }
    return changes, "checkout.session.completed", _session_object(row, now, **changes)


def _expire(row: Any, now: datetime, _amount: int | None) -> Changes:
    _require(row.status == SessionStatus.OPEN, row, "only an open session can expire")
    changes = {"status": SessionStatus.EXPIRED.value}
    return changes, "checkout.session.expired", _session_object(row, now, **changes)


def _refund(row: Any, now: datetime, amount: int | None) -> Changes:
    _require(row.payment_status == "paid", row, "only a paid session can be refunded")
    refunded = int(row.amount_refunded_cents)
    total = refunded + (amount if amount is not None else int(row.amount_cents) - refunded)
    _require(refunded < total <= int(row.amount_cents), row, "a refund cannot exceed what is left of the payment")
    return {"amount_refunded_cents": total}, "charge.refunded", _charge_object(row, amount_refunded=total)


def _dispute(row: Any, now: datetime, amount: int | None) -> Changes:
    _require(row.payment_status == "paid", row, "only a paid session can be disputed")
    _require(row.dispute_id is None, row, "this payment is already disputed")
    disputed = amount if amount is not None else int(row.amount_cents)
    _require(disputed <= int(row.amount_cents), row, "a dispute cannot exceed the payment")
    changes = {
        "dispute_id": f"dp_test_{hashlib.sha256(row.id.encode()).hexdigest()[:24]}",
        "dispute_status": "needs_response",
        "dispute_amount_cents": disputed,
    }
    return changes, "charge.dispute.created", _dispute_object(row, **changes)


def _dispute_closed(status: str) -> Callable[[Any, datetime, int | None], Changes]:
    def close(row: Any, now: datetime, _amount: int | None) -> Changes:
        _require(row.dispute_id is not None, row, "this payment has no dispute")
        allowed = ("needs_response", "lost") if status == "won" else ("needs_response",)
        _require(row.dispute_status in allowed, row, f"a {row.dispute_status} dispute cannot be {status}")
        changes = {"dispute_status": status}
        return changes, "charge.dispute.closed", _dispute_object(row, **changes)

    return close


_SIMULATIONS: dict[Simulation, Callable[[Any, datetime, int | None], Changes]] = {
    Simulation.COMPLETE: _complete,
    Simulation.EXPIRE: _expire,
    Simulation.REFUND: _refund,
    Simulation.DISPUTE: _dispute,
    Simulation.DISPUTE_WON: _dispute_closed("won"),
    Simulation.DISPUTE_LOST: _dispute_closed("lost"),
}


def _require(condition: bool, row: Any, refusal: str) -> None:
    if not condition:
        raise InvalidState(f"Offline Stripe refused: {refusal}.", details={"checkout_session_id": row.id})


def _row(conn: Connection, session_id: str, *, for_update: bool = False) -> Any:
    stmt = select(stripe_offline_sessions).where(stripe_offline_sessions.c.id == session_id)
    return conn.execute(stmt.with_for_update() if for_update else stmt).first()


def _status(row: Any, now: datetime) -> str:
    """Stripe expires an open session at ``expires_at`` by itself."""
    expires_at = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=now.tzinfo)
    if row.status == SessionStatus.OPEN and now >= expires_at:
        return SessionStatus.EXPIRED.value
    return str(row.status)


def _session(row: Any, now: datetime) -> StripeSession:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=now.tzinfo)
    return StripeSession(
        id=row.id,
        status=_status(row, now),
        payment_status=row.payment_status,
        amount_total=int(row.amount_cents),
        currency=row.currency,
        payment_intent_id=row.payment_intent_id,
        created=created,
    )


def _session_object(row: Any, now: datetime, **changes: Any) -> dict[str, Any]:
    current = {"status": _status(row, now), "payment_status": row.payment_status, **changes}
    return {
        "id": row.id,
        "object": "checkout.session",
        "mode": "payment",
        "status": current["status"],
        "payment_status": current["payment_status"],
        "amount_total": int(row.amount_cents),
        "currency": row.currency,
        "payment_intent": changes.get("payment_intent_id", row.payment_intent_id),
        "metadata": dict(row.session_metadata or {}),
        "livemode": False,
    }


def _charge_object(row: Any, *, amount_refunded: int) -> dict[str, Any]:
    return {
        "id": row.charge_id,
        "object": "charge",
        "amount": int(row.amount_cents),
        "amount_refunded": amount_refunded,
        "currency": row.currency,
        "payment_intent": row.payment_intent_id,
        "refunded": amount_refunded == int(row.amount_cents),
        "livemode": False,
    }


def _dispute_object(row: Any, **changes: Any) -> dict[str, Any]:
    return {
        "id": changes.get("dispute_id", row.dispute_id),
        "object": "dispute",
        "amount": changes.get("dispute_amount_cents", row.dispute_amount_cents),
        "currency": row.currency,
        "charge": row.charge_id,
        "payment_intent": row.payment_intent_id,
        "status": changes.get("dispute_status", row.dispute_status),
        "livemode": False,
    }
