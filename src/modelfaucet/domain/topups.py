"""The top-up state machine: what each Stripe event does to a top-up, in one table.

A top-up is born ``pending`` when its Checkout session opens. Stripe then says, in
events delivered at least once and in any order, that the session was paid (credit the
wallet once), that it is complete but a delayed payment is still to come (nothing yet), or
that it expired or its payment failed (the top-up fails). So every (status, payment) pair
has an answer: a repeated or late event changes nothing, and the one refusal — a payment
for a top-up that already failed — is left for an operator (409 ``invalid_state``).

:func:`decide` is pure: it names the outcome, and the webhook service applies it (the
ledger credit, the status change, the audit entry). A pair not in :data:`TRANSITIONS` is
refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

# The ledger transaction and the audit entries of a top-up reference it under this type.
TOPUP_REFERENCE_TYPE: Final = "stripe_topup"


class TopupStatus(StrEnum):
    PENDING = "pending"
    CREDITED = "credited"
    FAILED = "failed"


class Payment(StrEnum):
    """What a Stripe event says about a Checkout session's payment."""

    PAID = "paid"  # completed and paid, or a delayed payment succeeded
    AWAITED = "awaited"  # completed, but a delayed payment method has not paid yet
    FAILED = "failed"  # the session expired, or the delayed payment failed


class TopupOutcome(StrEnum):
    """What the event did, as the webhook's answer names it (``"outcome"``)."""

    CREDITED = "credited"
    ALREADY_CREDITED = "already_credited"
    AWAITING_PAYMENT = "awaiting_payment"
    FAILED = "failed"
    UNCHANGED = "unchanged"


class StripeEventStatus(StrEnum):
    """A stored Stripe event: in its first transaction, handled, or of a type not handled."""

    PROCESSING = "processing"
    PROCESSED = "processed"
    IGNORED = "ignored"


# (status, payment) -> (status after, outcome). Anything missing is refused.
TRANSITIONS: Final[dict[tuple[TopupStatus, Payment], tuple[TopupStatus, TopupOutcome]]] = {
    (TopupStatus.PENDING, Payment.PAID): (TopupStatus.CREDITED, TopupOutcome.CREDITED),
    (TopupStatus.CREDITED, Payment.PAID): (TopupStatus.CREDITED, TopupOutcome.ALREADY_CREDITED),
    # (FAILED, PAID) is refused: money arrived for a session we gave up on.
    (TopupStatus.PENDING, Payment.AWAITED): (TopupStatus.PENDING, TopupOutcome.AWAITING_PAYMENT),
    (TopupStatus.CREDITED, Payment.AWAITED): (TopupStatus.CREDITED, TopupOutcome.AWAITING_PAYMENT),
    (TopupStatus.FAILED, Payment.AWAITED): (TopupStatus.FAILED, TopupOutcome.AWAITING_PAYMENT),
    (TopupStatus.PENDING, Payment.FAILED): (TopupStatus.FAILED, TopupOutcome.FAILED),
    # A late expiry never takes back a credit; a repeated failure changes nothing.
    (TopupStatus.CREDITED, Payment.FAILED): (TopupStatus.CREDITED, TopupOutcome.UNCHANGED),
    (TopupStatus.FAILED, Payment.FAILED): (TopupStatus.FAILED, TopupOutcome.UNCHANGED),
}


@dataclass(frozen=True, slots=True)
class Decision:
    status_before: TopupStatus
    status_after: TopupStatus
    outcome: TopupOutcome | None  # None: refused, nothing is written

    @property
    def refused(self) -> bool:
        return self.outcome is None

    @property
    def changes_status(self) -> bool:
        return self.status_after is not self.status_before

    @property
    def credits(self) -> bool:
        """The wallet is credited exactly when a top-up becomes credited."""
        return self.changes_status and self.status_after is TopupStatus.CREDITED


def decide(status: TopupStatus | str, payment: Payment | str) -> Decision:
    current = TopupStatus(status)
    found = TRANSITIONS.get((current, Payment(payment)))
    if found is None:
        return Decision(current, current, None)
    status_after, outcome = found
    return Decision(current, status_after, outcome)


def refusal_message(status: TopupStatus | str) -> str:
    return f"The checkout top-up is {TopupStatus(status)}; it cannot be credited."
