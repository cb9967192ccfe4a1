"""handle_stripe_webhook: verify, store, dispatch and apply a Stripe event exactly once.

Order of decisions (each a named outcome, idempotency first):

1. The signature over the raw bytes (when a secret is configured) — else 400, nothing written.
2. The payload shape — else 400.
3. The event id: the event is stored (``uow.stripe_events.add_received``) in the same unit
   of work as its effects. A duplicate (replayed, or delivered concurrently and waiting
   on the first one's row) gets the answer stored with the first, marked ``duplicate``.
4. The event type, through :data:`HANDLERS`; other types are stored and ignored.
5. Checkout session events: the top-up of the event's session, held until the unit of work
   ends (so two events for one session are decided one after the other): unknown → 404
   (the replay tool relies on the exact message); for a completion, an amount or currency
   other than the pending top-up's → 400. Then
   :func:`~modelfaucet.services.settle_topup.settle_topup` — the same exactly-once path a
   sync takes for a lost webhook — decides (:func:`modelfaucet.domain.topups.decide`) and
   writes: credit it, fail it, or leave it as it is; a payment for a failed top-up → 409.
6. Refund and dispute events (``charge.refunded``, ``charge.dispute.created|closed``):
   :mod:`modelfaucet.services.stripe_reversals` — each posts once per Stripe object and
   amount, whatever the event id.

Every write — ledger transaction, status move, audit entry, stored answer — is committed
with the event row, or none of it. A refused event (4xx) writes nothing, so it can be
retried or replayed once fixed. The result is a :class:`WebhookOutcome` (Checkout events
and ignored types) or a :class:`~modelfaucet.services.stripe_reversals.ReversalApplied`;
``http/`` answers either with a 200.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..adapters.stripe.signature import SignatureError, secrets_from_setting, verify
from ..domain.outcomes import InvalidRequest, LedgerInvariantViolation, NotFound
from ..domain.topups import Payment, StripeEventStatus, TopupOutcome, TopupStatus
from .context import ServiceContext
from .repositories import TopupRecord
from .settle_topup import Cause, settle_topup
from .stripe_reversals import ReversalApplied, record_dispute, record_refund
from .unit_of_work import UnitOfWork

log = logging.getLogger("modelfaucet.stripe")

TOPUP_NOT_FOUND_MESSAGE = "Stripe checkout top-up was not found."
STRIPE_ACTOR = "stripe"


@dataclass(frozen=True, slots=True)
class StripeEvent:
    id: str
    type: str
    object: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """What a delivery of an event did — for a duplicate, what its first delivery did.

    ``outcome`` is None for an event type this service ignores. ``status`` is the top-up's
    status after the event; ``transaction_id`` the credit's ledger transaction.
    """

    event_id: str
    outcome: TopupOutcome | None = None
    topup_id: str | None = None
    checkout_session_id: str | None = None
    status: TopupStatus | None = None
    transaction_id: str | None = None
    duplicate: bool = False

    def to_record(self) -> dict[str, Any]:
        """The answer as stored with the event: the first release's body, key order included,
        so rows it stored and rows stored now answer a duplicate alike."""
        if self.outcome is None:
            return {"received": True, "ignored": True, "event_id": self.event_id}
        record: dict[str, Any] = {
            "received": True,
            "event_id": self.event_id,
            "outcome": str(self.outcome),
            "topup_id": self.topup_id,
            "checkout_session_id": self.checkout_session_id,
            "status": str(self.status),
        }
        if self.transaction_id is not None:
            record["transaction_id"] = self.transaction_id
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, duplicate: bool = False) -> WebhookOutcome:
        if record.get("ignored"):
            return cls(event_id=record["event_id"], duplicate=duplicate)
        return cls(
            event_id=record["event_id"],
            outcome=TopupOutcome(record["outcome"]),
            topup_id=record["topup_id"],
            checkout_session_id=record["checkout_session_id"],
            status=TopupStatus(record["status"]),
            transaction_id=record.get("transaction_id"),
            duplicate=duplicate,
        )


StripeEventOutcome = WebhookOutcome | ReversalApplied
Handler = Callable[[UnitOfWork, StripeEvent], StripeEventOutcome]
UNKNOWN_EVENT_TYPE = "other"  # the metric label of every event type this service does not handle


def outcome_from_record(record: Mapping[str, Any], *, duplicate: bool = False) -> StripeEventOutcome:
    """The typed answer stored with an event (a refund's or dispute's names its Stripe object)."""
    if "stripe_object_id" in record:
        return ReversalApplied.from_record(record, duplicate=duplicate)
    return WebhookOutcome.from_record(record, duplicate=duplicate)


def handle_stripe_webhook(ctx: ServiceContext, *, payload: bytes, signature_header: str | None) -> StripeEventOutcome:
    secrets = secrets_from_setting(ctx.settings.stripe_webhook_secret)
    if secrets:
        try:
            verify(
                payload,
                signature_header,
                secrets,
                now=int(ctx.clock().timestamp()),
                tolerance_seconds=ctx.settings.stripe_webhook_tolerance_seconds,
            )
        except SignatureError as exc:
            ctx.signals.stripe_webhook(UNKNOWN_EVENT_TYPE, "signature_failed")
            raise InvalidRequest(f"Stripe webhook signature verification failed: {exc}") from None
    event = _parse(payload)

    with ctx.unit_of_work() as uow:
        handler = HANDLERS.get(event.type)
        kind = event.type if handler is not None else UNKNOWN_EVENT_TYPE  # a bounded metric label
        if not uow.stripe_events.add_received(event_id=event.id, event_type=event.type, payload=payload.decode()):
            stored = _stored_outcome(uow, event.id)
            ctx.signals.stripe_webhook(kind, "duplicate")
            return stored
        outcome: StripeEventOutcome
        if handler is None:
            outcome, status = WebhookOutcome(event_id=event.id), StripeEventStatus.IGNORED
        else:
            outcome, status = handler(uow, event), StripeEventStatus.PROCESSED
        uow.stripe_events.record_answer(event.id, status=status, answer=outcome.to_record())
        uow.after_commit(partial(ctx.signals.stripe_webhook, kind, str(status)))
        uow.commit()
    return outcome


def _stored_outcome(uow: UnitOfWork, event_id: str) -> StripeEventOutcome:
    answer = uow.stripe_events.answer_of(event_id)
    if answer is None:
        # The event row and its answer are committed together; one without the other is a bug.
        raise LedgerInvariantViolation(f"stored Stripe event {event_id} has no answer")
    return outcome_from_record(answer, duplicate=True)


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


# --- handlers: what each event type says of the payment -------------------------------


def _on_completed(uow: UnitOfWork, event: StripeEvent) -> WebhookOutcome:
    topup = _paid_topup(uow, event)
    # Delayed payment methods: completed now, paid (or failed) by a later async event.
    payment = Payment.PAID if event.object.get("payment_status") == "paid" else Payment.AWAITED
    return _apply(uow, event, topup, payment)


def _on_async_succeeded(uow: UnitOfWork, event: StripeEvent) -> WebhookOutcome:
    return _apply(uow, event, _paid_topup(uow, event), Payment.PAID)


def _on_failed(uow: UnitOfWork, event: StripeEvent) -> WebhookOutcome:
    return _apply(uow, event, _topup(uow, event), Payment.FAILED)


def _on_refunded(uow: UnitOfWork, event: StripeEvent) -> StripeEventOutcome:
    return record_refund(uow, event_id=event.id, charge=event.object)


def _on_dispute(uow: UnitOfWork, event: StripeEvent) -> StripeEventOutcome:
    return record_dispute(uow, event_id=event.id, event_type=event.type, dispute=event.object)


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _on_completed,
    "checkout.session.async_payment_succeeded": _on_async_succeeded,
    "checkout.session.async_payment_failed": _on_failed,
    "checkout.session.expired": _on_failed,
    "charge.refunded": _on_refunded,
    "charge.dispute.created": _on_dispute,
    "charge.dispute.closed": _on_dispute,
}


# --- load, decide, write ----------------------------------------------------------------


def _topup(uow: UnitOfWork, event: StripeEvent) -> TopupRecord:
    """The top-up of the event's session, held until the unit of work ends."""
    session_id = event.object.get("id")
    if not isinstance(session_id, str) or not 1 <= len(session_id) <= 255:
        raise InvalidRequest("The event's checkout session has no valid id.", details={"field": "data.object.id"})
    topup = uow.topups.by_session(session_id, for_update=True)
    if topup is None:
        raise NotFound(TOPUP_NOT_FOUND_MESSAGE, details={"checkout_session_id": session_id})
    return topup


def _paid_topup(uow: UnitOfWork, event: StripeEvent) -> TopupRecord:
    """The top-up of the event's session, checked against what Stripe says was paid."""
    topup = _topup(uow, event)
    amount_total = event.object.get("amount_total")
    currency = event.object.get("currency")
    if isinstance(amount_total, bool) or not isinstance(amount_total, int) or amount_total != topup.amount_cents:
        raise InvalidRequest(
            "The event's amount_total does not match the pending top-up; nothing was credited.",
            details={
                "checkout_session_id": topup.checkout_session_id,
                "expected_amount_cents": topup.amount_cents,
                "received_amount_cents": amount_total if isinstance(amount_total, int) else None,
            },
        )
    if not isinstance(currency, str) or currency.lower() != topup.currency:
        raise InvalidRequest(
            "The event's currency does not match the pending top-up; nothing was credited.",
            details={"checkout_session_id": topup.checkout_session_id, "expected_currency": topup.currency},
        )
    return topup


def _apply(uow: UnitOfWork, event: StripeEvent, topup: TopupRecord, payment: Payment) -> WebhookOutcome:
    intent = event.object.get("payment_intent")
    settled = settle_topup(
        uow,
        topup,
        payment,
        Cause(id=event.id, actor=STRIPE_ACTOR, note=event.type, details={"event_id": event.id}),
        payment_intent_id=intent if isinstance(intent, str) and 1 <= len(intent) <= 255 else None,
    )
    if settled.transaction_id is not None:
        log.info("stripe top-up %s credited by %s", topup.id, event.id)
    return WebhookOutcome(
        event_id=event.id,
        outcome=settled.decision.outcome,
        topup_id=topup.id,
        checkout_session_id=topup.checkout_session_id,
        status=settled.decision.status_after,
        transaction_id=settled.transaction_id,
    )
