"""Three-way sync: what one Checkout session's row says when Stripe, the top-up and the ledger
are compared (SPEC §20).

Stripe is the authority on what was paid; the top-up row is ours; the ledger follows the
top-up (a credited top-up has exactly its credit, which reconciliation checks). So each
session is judged on two views — what Stripe holds (:class:`StripeView`, or nothing) and
the local top-up (:class:`LocalView`, or nothing) — and :func:`classify` names one outcome,
in this order:

1. ``unknown_locally``: Stripe holds a session no top-up has. Flagged and never credited:
   there is no wallet we could trust to credit.
2. ``amount_mismatch`` / ``currency_mismatch``: Stripe's session is not the top-up's amount
   or currency. Flagged, nothing written (the webhook refuses the same).
3. What Stripe says of the payment, against the top-up's status:

   ============================  ==========  ===================  =====================
   Stripe                        pending     credited             failed
   ============================  ==========  ===================  =====================
   complete and paid             credit now  ok                   paid_but_failed (flag)
   expired                       expire now  credited_but_unpaid  ok
   complete, payment awaited     ok          credited_but_unpaid  ok
   open, or not held by Stripe   ok [*]      credited_but_unpaid  ok
   ============================  ==========  ===================  =====================

   [*] a pending top-up older than the Checkout session lifetime can no longer be paid:
   it is expired now.

``credited_now`` and ``expired_now`` are applied through the same exactly-once path as the
webhook (:func:`modelfaucet.domain.topups.decide` on the locked top-up), with the payment
this module names; the other outcomes write nothing. The function is pure: the caller
re-runs it on the top-up it has locked, so a webhook that won the race turns
``credited_now`` into ``ok``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from .topups import Payment, TopupStatus

# Stripe's default (and longest) Checkout session lifetime; the service never asks for a
# longer one, so a session older than this that Stripe does not call paid never will be.
CHECKOUT_SESSION_LIFETIME: Final = timedelta(hours=24)


class SyncOutcome(StrEnum):
    OK = "ok"
    CREDITED_NOW = "credited_now"
    EXPIRED_NOW = "expired_now"
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    UNKNOWN_LOCALLY = "unknown_locally"
    CREDITED_BUT_UNPAID = "credited_but_unpaid"
    PAID_BUT_FAILED = "paid_but_failed"


# Outcomes an operator must look at: the CLI exits 1 and reconciliation lists them.
FLAGGED: Final = frozenset(
    {
        SyncOutcome.AMOUNT_MISMATCH,
        SyncOutcome.CURRENCY_MISMATCH,
        SyncOutcome.UNKNOWN_LOCALLY,
        SyncOutcome.CREDITED_BUT_UNPAID,
        SyncOutcome.PAID_BUT_FAILED,
    }
)


class SessionStatus(StrEnum):
    """A Checkout session's ``status`` in Stripe."""

    OPEN = "open"
    COMPLETE = "complete"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class StripeView:
    """What Stripe holds for a Checkout session."""

    status: str
    payment_status: str
    amount_cents: int | None
    currency: str | None

    @property
    def label(self) -> str:
        """One word for the row: the payment status of a complete session, else its status."""
        return self.payment_status if self.status == SessionStatus.COMPLETE else self.status

    @property
    def payment(self) -> Payment | None:
        """What the session says of the payment, as a webhook event would; None while open."""
        if self.status == SessionStatus.EXPIRED:
            return Payment.FAILED
        if self.status == SessionStatus.COMPLETE:
            return Payment.PAID if self.payment_status == "paid" else Payment.AWAITED
        return None


@dataclass(frozen=True, slots=True)
class LocalView:
    """The local top-up of a session."""

    status: TopupStatus
    amount_cents: int
    currency: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SyncDecision:
    outcome: SyncOutcome
    # The payment to apply through the top-up's credit path; None: nothing is written.
    payment: Payment | None = None

    @property
    def flagged(self) -> bool:
        return self.outcome in FLAGGED


def classify(
    local: LocalView | None,
    stripe: StripeView | None,
    *,
    now: datetime,
    lifetime: timedelta = CHECKOUT_SESSION_LIFETIME,
) -> SyncDecision:
    """The outcome of one session's row (see the module docstring for the order)."""
    if local is None:
        if stripe is None:
            raise ValueError("a sync row needs Stripe's session or a local top-up")
        return SyncDecision(SyncOutcome.UNKNOWN_LOCALLY)
    if stripe is not None:
        if stripe.amount_cents != local.amount_cents:
            return SyncDecision(SyncOutcome.AMOUNT_MISMATCH)
        if (stripe.currency or "").lower() != local.currency:
            return SyncDecision(SyncOutcome.CURRENCY_MISMATCH)
    payment = None if stripe is None else stripe.payment
    if local.status is TopupStatus.CREDITED:
        return SyncDecision(SyncOutcome.OK if payment is Payment.PAID else SyncOutcome.CREDITED_BUT_UNPAID)
    if local.status is TopupStatus.FAILED:
        return SyncDecision(SyncOutcome.PAID_BUT_FAILED if payment is Payment.PAID else SyncOutcome.OK)
    if payment is Payment.PAID:
        return SyncDecision(SyncOutcome.CREDITED_NOW, Payment.PAID)
    if payment is Payment.FAILED or (payment is None and now - local.created_at > lifetime):
        return SyncDecision(SyncOutcome.EXPIRED_NOW, Payment.FAILED)
    return SyncDecision(SyncOutcome.OK)
