"""settle_topup: the one way a top-up's status moves and its credit is posted.

Two callers learn that a Checkout session was paid (or expired): the webhook, from an
event, and the sync, from Stripe's session list when the event was lost. Both hold the
top-up (``uow.topups.by_session(…, for_update=True)``) and call this, so whichever comes
second sees what the first did: :func:`modelfaucet.domain.topups.decide` answers
``already_credited`` and nothing is posted. A top-up is credited once, whoever hears first.

Writes, all in the caller's unit of work: the credit (wallet +amount, Stripe clearing
−amount) through ``uow.ledger.post_at_commit`` (its balances move at the commit), the
status move stamped with its cause, the PaymentIntent of the paid session (refunds and
disputes name it), the audit entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..domain.audit import AuditEntry
from ..domain.ledger import Reason, SystemAccount, Transaction
from ..domain.outcomes import InvalidRequest, InvalidState
from ..domain.topups import TOPUP_REFERENCE_TYPE, Decision, Payment, TopupStatus, decide, refusal_message
from .holds import expire_overdue_before_credit
from .repositories import TopupRecord
from .unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class Cause:
    """What moved the top-up: stamped on its row (``last_event_id``) and in the audit trail."""

    id: str  # the Stripe event id, or ``stripe_sync:<run id>``
    actor: str  # ``stripe``, or the operator who ran the sync
    note: str  # the event type, or ``stripe sync``
    details: Mapping[str, str] = field(default_factory=dict)  # e.g. {"event_id": …}
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Settled:
    decision: Decision
    transaction_id: str | None  # the credit's ledger transaction, when this call credited


def settle_topup(
    uow: UnitOfWork,
    topup: TopupRecord,
    payment: Payment,
    cause: Cause,
    *,
    payment_intent_id: str | None = None,
) -> Settled:
    """Apply what Stripe says of the payment to a top-up the caller holds. Refused, with
    nothing written: a payment for a failed top-up (409 ``invalid_state``), a PaymentIntent
    that already paid another top-up (400)."""
    decision = decide(topup.status, payment)
    if decision.refused:
        raise InvalidState(
            refusal_message(topup.status),
            details={"checkout_session_id": topup.checkout_session_id, "status": str(topup.status)},
        )
    if payment_intent_id is not None:
        owner = uow.topups.by_payment_intent(payment_intent_id)
        if owner is not None and owner.id != topup.id:
            raise InvalidRequest(
                "The payment_intent already paid another top-up; nothing was credited.",
                details={"checkout_session_id": topup.checkout_session_id, "field": "payment_intent"},
            )
    transaction_id = _post_credit(uow, topup) if decision.credits else None
    if decision.changes_status:
        uow.topups.move(
            topup.id,
            before=decision.status_before,
            after=decision.status_after,
            event_id=cause.id,
            transaction_id=transaction_id,
        )
        uow.audit.add(_audit_entry(cause, topup, decision, transaction_id))
    if payment_intent_id and decision.status_after is TopupStatus.CREDITED and topup.payment_intent_id is None:
        uow.topups.record_payment_intent(topup.id, payment_intent_id)
    return Settled(decision, transaction_id)


def _post_credit(uow: UnitOfWork, topup: TopupRecord) -> str:
    """The wallet is credited, Stripe clearing debited, by the top-up's amount.

    Every credit moves the same clearing row (and a busy wallet's), so the two balances
    move last (``post_at_commit``): their row locks last only the commit, not the status
    move, answer and audit writes. A credit decides nothing on the balance, so the wallet is
    locked early only when it has overdue holds to expire (SPEC §18: the next write that
    touches it)."""
    expire_overdue_before_credit(uow, topup.account_id, has_due=topup.wallet_has_due_holds)
    clearing = uow.ledger.system_account(SystemAccount.STRIPE_CLEARING)
    reason = Reason.STRIPE_CHECKOUT_TOPUP.value
    return uow.ledger.post_at_commit(
        Transaction.transfer(
            reason,
            debit=clearing,
            credit=topup.account_id,
            amount_units=topup.amount_units,
            reference_type=TOPUP_REFERENCE_TYPE,
            reference_id=topup.id,
        )
    )


def _audit_entry(cause: Cause, topup: TopupRecord, decision: Decision, transaction_id: str | None) -> AuditEntry:
    details: dict[str, str] = {**cause.details, "checkout_session_id": topup.checkout_session_id}
    if transaction_id is not None:
        details.update(wallet_id=topup.account_id, transaction_id=transaction_id)
    return AuditEntry(
        actor=cause.actor,
        action=f"stripe.topup_{decision.status_after}",
        resource_type=TOPUP_REFERENCE_TYPE,
        resource_id=topup.id,
        before_status=str(decision.status_before),
        after_status=str(decision.status_after),
        amount_units=topup.amount_units,
        note=cause.note,
        request_id=cause.request_id,
        details=details,
    )
