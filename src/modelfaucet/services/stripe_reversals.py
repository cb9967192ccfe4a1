"""Refunds and disputes from Stripe's webhooks: the books follow the money back (SPEC §20).

``charge.refunded`` carries the charge's total refunded so far; ``charge.dispute.created``
and ``charge.dispute.closed`` a dispute and its status. The webhook service stores the
event and calls :func:`record_refund` or :func:`record_dispute` in the same unit of work.

Order of decisions, for each:

1. The event's object: an id, the PaymentIntent, a whole non-negative amount in cents —
   else 400, nothing written.
2. The top-up paid by that PaymentIntent (recorded when it was credited, by the webhook or
   by a sync): none → 404 (Stripe retries, and a sync that credits a lost session records
   it); its currency must match and the amount may not exceed the top-up's (400); a top-up
   that is not credited never had anything to take back (409).
3. The Stripe object's row, held until the unit of work ends (created on first sight), so
   two events for one charge or dispute are decided one after the other.
4. The decision: :func:`~modelfaucet.domain.reversals.refund_increase` (only what the total
   grew by) or :func:`~modelfaucet.domain.reversals.decide_dispute` — a replay under any
   event id moves nothing.
5. The writes: the wallet that the top-up credited is held and debited by what it still
   has, the rest posted to ``uncollected_usage`` (or the dispute's debit reversed exactly),
   one transaction through ``uow.ledger.post``; its posting row (unique per object,
   movement and amount); the object's new state; the audit entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..domain.audit import AuditEntry
from ..domain.identity import new_id
from ..domain.ledger import OwnerScope, SystemAccount
from ..domain.money import cents_to_units, format_usd, parse_usd
from ..domain.outcomes import InvalidRequest, InvalidState, NotFound
from ..domain.reversals import (
    REASON_OF,
    REVERSAL_REFERENCE_TYPE,
    DisputeDecision,
    Movement,
    ReversalKind,
    ReversalOutcome,
    ReversalStatus,
    Split,
    decide_dispute,
    dispute_says,
    refund_increase,
    reversal_transaction,
    split_debit,
)
from ..domain.topups import TopupStatus
from .holds import expire_overdue_on
from .repositories import ReversalPostingRecord, ReversalRecord, TopupRecord
from .unit_of_work import UnitOfWork

PAYMENT_NOT_FOUND_MESSAGE = "Stripe top-up for this payment was not found."
STRIPE_ACTOR = "stripe"


@dataclass(frozen=True, slots=True)
class ReversalApplied:
    """What a refund or dispute event did — for a duplicate, what its first delivery did.

    ``wallet_units`` and ``uncollected_units``: what this event took from (or, reinstated,
    gave back to) the wallet and the uncollected account; 0 when nothing moved.
    """

    event_id: str
    outcome: ReversalOutcome
    kind: ReversalKind
    stripe_object_id: str
    topup_id: str
    status: ReversalStatus | None
    transaction_id: str | None = None
    wallet_units: int = 0
    uncollected_units: int = 0
    duplicate: bool = False

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "received": True,
            "event_id": self.event_id,
            "outcome": str(self.outcome),
            "topup_id": self.topup_id,
            "kind": str(self.kind),
            "stripe_object_id": self.stripe_object_id,
            "status": None if self.status is None else str(self.status),
            "wallet_usd": format_usd(self.wallet_units),
            "uncollected_usd": format_usd(self.uncollected_units),
        }
        if self.transaction_id is not None:
            record["transaction_id"] = self.transaction_id
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, duplicate: bool = False) -> ReversalApplied:
        status = record.get("status")
        return cls(
            event_id=record["event_id"],
            outcome=ReversalOutcome(record["outcome"]),
            kind=ReversalKind(record["kind"]),
            stripe_object_id=record["stripe_object_id"],
            topup_id=record["topup_id"],
            status=None if status is None else ReversalStatus(status),
            transaction_id=record.get("transaction_id"),
            wallet_units=parse_usd(record["wallet_usd"]),
            uncollected_units=parse_usd(record["uncollected_usd"]),
            duplicate=duplicate,
        )


def record_refund(uow: UnitOfWork, *, event_id: str, charge: Mapping[str, Any]) -> ReversalApplied:
    """``charge.refunded``: post what the charge's refunded total grew by, once."""
    charge_id = _object_id(charge, field="data.object.id")
    refunded_total = _cents(charge, "amount_refunded", minimum=0)
    topup = _topup_of_payment(uow, charge, amount_cents=refunded_total)
    held = _hold_refund(uow, charge_id, topup)
    increase = refund_increase(held.amount_cents, refunded_total)
    if increase == 0:
        return ReversalApplied(
            event_id=event_id,
            outcome=ReversalOutcome.UNCHANGED,
            kind=held.kind,
            stripe_object_id=charge_id,
            topup_id=topup.id,
            status=held.status,
        )
    split, transaction_id = _debit(
        uow, held, amount_units=cents_to_units(increase), amount_cents_after=refunded_total, event_id=event_id
    )
    uow.topups.update_reversal(
        held.id,
        status=ReversalStatus.REFUNDED,
        amount_cents=refunded_total,
        wallet_units=held.wallet_units + split.wallet_units,
        uncollected_units=held.uncollected_units + split.uncollected_units,
        event_id=event_id,
    )
    applied = ReversalApplied(
        event_id=event_id,
        outcome=ReversalOutcome.REFUND_POSTED,
        kind=ReversalKind.REFUND,
        stripe_object_id=charge_id,
        topup_id=topup.id,
        status=ReversalStatus.REFUNDED,
        transaction_id=transaction_id,
        wallet_units=split.wallet_units,
        uncollected_units=split.uncollected_units,
    )
    uow.audit.add(_audit_entry(applied, held, note=f"refunded total {refunded_total} cents"))
    return applied


def record_dispute(uow: UnitOfWork, *, event_id: str, event_type: str, dispute: Mapping[str, Any]) -> ReversalApplied:
    """``charge.dispute.created`` / ``.closed``: withdraw the disputed funds once, reinstate them
    once if the dispute is won."""
    dispute_id = _object_id(dispute, field="data.object.id")
    amount_cents = _cents(dispute, "amount", minimum=1)
    stripe_status = dispute.get("status")
    if not isinstance(stripe_status, str):
        raise InvalidRequest("The dispute has no status.", details={"field": "data.object.status"})
    says = dispute_says(event_type, stripe_status)
    topup = _topup_of_payment(uow, dispute, amount_cents=amount_cents)

    held = uow.topups.reversal(ReversalKind.DISPUTE, dispute_id, for_update=True)
    decision = decide_dispute(None if held is None else held.status, says)
    if held is None and decision.status_after is not None:
        proposed = ReversalRecord(
            id=new_id(),
            kind=ReversalKind.DISPUTE,
            stripe_object_id=dispute_id,
            topup_id=topup.id,
            account_id=topup.account_id,
            status=decision.status_after,
            amount_cents=amount_cents,
            last_event_id=event_id,
        )
        if uow.topups.add_reversal(proposed):
            held = proposed
        else:  # a concurrent first event for this dispute stored it: decide on what it stored
            held = uow.topups.reversal(ReversalKind.DISPUTE, dispute_id, for_update=True)
            decision = decide_dispute(None if held is None else held.status, says)
    if held is None or not decision.changes_status:
        return ReversalApplied(
            event_id=event_id,
            outcome=decision.outcome,
            kind=ReversalKind.DISPUTE,
            stripe_object_id=dispute_id,
            topup_id=topup.id,
            status=decision.status_before,
        )
    return _move_dispute(uow, held, topup, decision, event_id=event_id, event_type=event_type)


def _move_dispute(
    uow: UnitOfWork,
    held: ReversalRecord,
    topup: TopupRecord,
    decision: DisputeDecision,
    *,
    event_id: str,
    event_type: str,
) -> ReversalApplied:
    status_after = decision.status_after
    if status_after is None:  # pragma: no cover - the caller returns before
        raise InvalidState("The dispute has nowhere to move.")
    split, transaction_id = Split(0, 0), None
    taken = Split(held.wallet_units, held.uncollected_units)
    if decision.movement is Movement.DEBIT:
        split, transaction_id = _debit(
            uow,
            held,
            amount_units=cents_to_units(held.amount_cents),
            amount_cents_after=held.amount_cents,
            event_id=event_id,
        )
        taken = split
    elif decision.movement is Movement.REVERSE:
        split = taken
        expire_overdue_on(uow, uow.ledger.require(held.account_id, for_update=True))
        transaction_id = _post(
            uow, held, Movement.REVERSE, split, amount_cents_after=held.amount_cents, event_id=event_id
        )
    uow.topups.update_reversal(
        held.id,
        status=status_after,
        amount_cents=held.amount_cents,
        wallet_units=taken.wallet_units,
        uncollected_units=taken.uncollected_units,
        event_id=event_id,
    )
    applied = ReversalApplied(
        event_id=event_id,
        outcome=decision.outcome,
        kind=ReversalKind.DISPUTE,
        stripe_object_id=held.stripe_object_id,
        topup_id=topup.id,
        status=status_after,
        transaction_id=transaction_id,
        wallet_units=split.wallet_units,
        uncollected_units=split.uncollected_units,
    )
    uow.audit.add(_audit_entry(applied, held, note=event_type, before=decision.status_before))
    return applied


# --- load ------------------------------------------------------------------------------


def _object_id(obj: Mapping[str, Any], *, field: str) -> str:
    value = obj.get("id")
    if not isinstance(value, str) or not 1 <= len(value) <= 255:
        raise InvalidRequest("The event's object has no valid id.", details={"field": field})
    return value


def _cents(obj: Mapping[str, Any], name: str, *, minimum: int) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidRequest(
            f"The event's {name} must be a whole number of cents of at least {minimum}.",
            details={"field": f"data.object.{name}"},
        )
    return value


def _topup_of_payment(uow: UnitOfWork, obj: Mapping[str, Any], *, amount_cents: int) -> TopupRecord:
    intent = obj.get("payment_intent")
    if isinstance(intent, Mapping):  # expanded into the PaymentIntent object
        intent = intent.get("id")
    if not isinstance(intent, str) or not 1 <= len(intent) <= 255:
        raise InvalidRequest("The event names no payment_intent.", details={"field": "data.object.payment_intent"})
    topup = uow.topups.by_payment_intent(intent)
    if topup is None:
        raise NotFound(PAYMENT_NOT_FOUND_MESSAGE, details={"payment_intent": intent})
    currency = obj.get("currency")
    if not isinstance(currency, str) or currency.lower() != topup.currency:
        raise InvalidRequest(
            "The event's currency does not match the top-up; nothing was posted.",
            details={"topup_id": topup.id, "expected_currency": topup.currency},
        )
    if amount_cents > topup.amount_cents:
        raise InvalidRequest(
            "The event's amount exceeds the top-up's; nothing was posted.",
            details={"topup_id": topup.id, "topup_amount_cents": topup.amount_cents, "received_cents": amount_cents},
        )
    if topup.status is not TopupStatus.CREDITED:
        raise InvalidState(
            f"The top-up is {topup.status}; only a credited top-up can be refunded or disputed.",
            details={"topup_id": topup.id, "status": str(topup.status)},
        )
    return topup


def _hold_refund(uow: UnitOfWork, charge_id: str, topup: TopupRecord) -> ReversalRecord:
    """The charge's refund row, held; created (nothing posted yet) on its first event."""
    held = uow.topups.reversal(ReversalKind.REFUND, charge_id, for_update=True)
    if held is None:
        uow.topups.add_reversal(
            ReversalRecord(
                id=new_id(),
                kind=ReversalKind.REFUND,
                stripe_object_id=charge_id,
                topup_id=topup.id,
                account_id=topup.account_id,
                status=ReversalStatus.REFUNDED,
                amount_cents=0,
            )
        )
        held = uow.topups.reversal(ReversalKind.REFUND, charge_id, for_update=True)
    if held is None or held.topup_id != topup.id:
        raise InvalidState("The charge belongs to another top-up.", details={"stripe_object_id": charge_id})
    return held


# --- write -------------------------------------------------------------------------------


def _debit(
    uow: UnitOfWork, held: ReversalRecord, *, amount_units: int, amount_cents_after: int, event_id: str
) -> tuple[Split, str]:
    """Take ``amount_units`` from the top-up's wallet as far as it has them (held, so the
    split stays true until commit), the rest from uncollected. Its overdue holds expire
    first (SPEC §18), so the split sees the true available."""
    wallet = expire_overdue_on(uow, uow.ledger.require(held.account_id, for_update=True))
    split = split_debit(amount_units, wallet.available_units)
    posted = _post(uow, held, Movement.DEBIT, split, amount_cents_after=amount_cents_after, event_id=event_id)
    return split, posted


def _post(
    uow: UnitOfWork, held: ReversalRecord, movement: Movement, split: Split, *, amount_cents_after: int, event_id: str
) -> str:
    posting_id = new_id()
    transaction_id = uow.ledger.post(
        reversal_transaction(
            REASON_OF[(held.kind, movement)],
            split,
            movement=movement,
            clearing_id=uow.ledger.ensure(OwnerScope.SYSTEM, SystemAccount.STRIPE_CLEARING.value),
            wallet_id=held.account_id,
            uncollected_id=uow.ledger.ensure(OwnerScope.SYSTEM, SystemAccount.UNCOLLECTED_USAGE.value),
            reference_id=posting_id,
        )
    )
    uow.topups.add_reversal_posting(
        ReversalPostingRecord(
            id=posting_id,
            reversal_id=held.id,
            movement=movement,
            wallet_units=split.wallet_units,
            uncollected_units=split.uncollected_units,
            amount_cents_after=amount_cents_after,
            event_id=event_id,
            transaction_id=transaction_id,
        )
    )
    return transaction_id


def _audit_entry(
    applied: ReversalApplied, held: ReversalRecord, *, note: str, before: ReversalStatus | None = None
) -> AuditEntry:
    details: dict[str, Any] = {
        "event_id": applied.event_id,
        "topup_id": applied.topup_id,
        "stripe_object_id": applied.stripe_object_id,
        "wallet_id": held.account_id,
        "wallet_usd": format_usd(applied.wallet_units),
        "uncollected_usd": format_usd(applied.uncollected_units),
    }
    if applied.transaction_id is not None:
        details["transaction_id"] = applied.transaction_id
    # Like a top-up's ("stripe.topup_credited"): the state the Stripe object is now in.
    action = "stripe.refund_posted" if held.kind is ReversalKind.REFUND else f"stripe.dispute_{applied.status}"
    return AuditEntry(
        actor=STRIPE_ACTOR,
        action=action,
        resource_type=REVERSAL_REFERENCE_TYPE,
        resource_id=held.id,
        before_status=None if before is None else str(before),
        after_status=None if applied.status is None else str(applied.status),
        amount_units=applied.wallet_units + applied.uncollected_units,
        note=note,
        details=details,
    )
