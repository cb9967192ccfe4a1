"""Refunds and disputes: money Stripe gives back to a cardholder after a top-up (SPEC §20).

A credited top-up moved its amount from Stripe clearing into the end user's wallet. When
Stripe later returns money to the cardholder — a refund, or a dispute that withdraws the
payment — the books follow it:

    Stripe clearing  +amount           (the money is no longer held for us at Stripe)
    the wallet       −what it holds    (its available balance, never below zero)
    uncollected      −the rest         (credits already spent on usage: the platform's loss)

and a dispute the platform wins is the exact reverse of its debit. :func:`split_debit` is
that rule; :func:`reversal_transaction` builds the balanced transaction.

Each posts once per Stripe object and amount:

- a refund event carries the charge's total refunded so far (partial refunds arrive as
  growing totals), so only the increase over what was already posted for that charge is
  posted (:func:`refund_increase`); a replay, under any event id, posts nothing;
- a dispute moves through :data:`DISPUTE_TRANSITIONS`: its funds are withdrawn once
  (opened, or lost without an open event first) and re-credited once (won, even after
  lost); everything else changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from .ledger import Posting, Reason, Transaction

# The ledger transaction of a reversal references its posting row under this type.
REVERSAL_REFERENCE_TYPE: Final = "stripe_reversal"


class ReversalKind(StrEnum):
    REFUND = "refund"  # one per refunded charge
    DISPUTE = "dispute"  # one per dispute


class ReversalStatus(StrEnum):
    REFUNDED = "refunded"  # a charge with refunds (its posted total grows)
    OPEN = "open"  # a dispute whose funds are withdrawn, not yet decided
    LOST = "lost"
    WON = "won"


class Movement(StrEnum):
    """What a reversal event does to the books."""

    DEBIT = "debit"  # clearing +amount; wallet and uncollected −amount
    REVERSE = "reverse"  # the exact reverse of the last debit


class ReversalOutcome(StrEnum):
    """What the event did, as the webhook's answer names it (``"outcome"``)."""

    REFUND_POSTED = "refund_posted"
    DISPUTE_DEBITED = "dispute_debited"
    DISPUTE_LOST = "dispute_lost"
    DISPUTE_REINSTATED = "dispute_reinstated"
    INQUIRY_NOTED = "inquiry_noted"
    UNCHANGED = "unchanged"


class DisputeSays(StrEnum):
    """What a Stripe dispute event says about the disputed funds."""

    OPENED = "opened"  # a chargeback: Stripe withdrew the funds
    LOST = "lost"
    WON = "won"  # Stripe reinstated the funds
    INQUIRY = "inquiry"  # an inquiry (``warning_*``): no funds moved


REASON_OF: Final[dict[tuple[ReversalKind, Movement], Reason]] = {
    (ReversalKind.REFUND, Movement.DEBIT): Reason.STRIPE_REFUND,
    (ReversalKind.DISPUTE, Movement.DEBIT): Reason.STRIPE_DISPUTE,
    (ReversalKind.DISPUTE, Movement.REVERSE): Reason.STRIPE_DISPUTE_REVERSAL,
}

# (status, what the event says) -> (status after, movement or None, outcome). A dispute not
# yet seen has status None. A pair missing here changes nothing (``unchanged``).
DISPUTE_TRANSITIONS: Final[
    dict[tuple[ReversalStatus | None, DisputeSays], tuple[ReversalStatus, Movement | None, ReversalOutcome]]
] = {
    (None, DisputeSays.OPENED): (ReversalStatus.OPEN, Movement.DEBIT, ReversalOutcome.DISPUTE_DEBITED),
    # Closed lost before its "created" event arrived: the funds are gone all the same.
    (None, DisputeSays.LOST): (ReversalStatus.LOST, Movement.DEBIT, ReversalOutcome.DISPUTE_DEBITED),
    # Won before "created" arrived: withdrawn and reinstated, nothing to post — but the row
    # is kept, so the late "created" changes nothing.
    (None, DisputeSays.WON): (ReversalStatus.WON, None, ReversalOutcome.UNCHANGED),
    (ReversalStatus.OPEN, DisputeSays.LOST): (ReversalStatus.LOST, None, ReversalOutcome.DISPUTE_LOST),
    (ReversalStatus.OPEN, DisputeSays.WON): (ReversalStatus.WON, Movement.REVERSE, ReversalOutcome.DISPUTE_REINSTATED),
    # Lost, then won after all (a late reversal by the card network): re-credit once.
    (ReversalStatus.LOST, DisputeSays.WON): (ReversalStatus.WON, Movement.REVERSE, ReversalOutcome.DISPUTE_REINSTATED),
}


@dataclass(frozen=True, slots=True)
class Split:
    """Where a debit of ``wallet_units + uncollected_units`` is taken from."""

    wallet_units: int
    uncollected_units: int

    @property
    def amount_units(self) -> int:
        return self.wallet_units + self.uncollected_units


@dataclass(frozen=True, slots=True)
class DisputeDecision:
    status_before: ReversalStatus | None
    status_after: ReversalStatus | None  # None: a dispute never seen, and nothing to keep
    movement: Movement | None
    outcome: ReversalOutcome

    @property
    def changes_status(self) -> bool:
        return self.status_after is not self.status_before


def split_debit(amount_units: int, available_units: int) -> Split:
    """Take ``amount_units`` from the wallet as far as it holds them, the rest from uncollected."""
    if amount_units <= 0:
        raise ValueError("a reversal moves a positive amount")
    from_wallet = min(amount_units, max(available_units, 0))
    return Split(wallet_units=from_wallet, uncollected_units=amount_units - from_wallet)


def refund_increase(posted_cents: int, refunded_total_cents: int) -> int:
    """Cents still to post when a charge's refunded total is ``refunded_total_cents`` and
    ``posted_cents`` were already posted: 0 for a replay or an older, smaller total."""
    return max(refunded_total_cents - posted_cents, 0)


def dispute_says(event_type: str, stripe_status: str) -> DisputeSays:
    """What ``charge.dispute.created`` / ``charge.dispute.closed`` with this dispute status says."""
    if stripe_status.startswith("warning_"):
        return DisputeSays.INQUIRY
    if event_type == "charge.dispute.closed":
        if stripe_status == "won":
            return DisputeSays.WON
        if stripe_status == "lost":
            return DisputeSays.LOST
    return DisputeSays.OPENED


def decide_dispute(status: ReversalStatus | None, says: DisputeSays) -> DisputeDecision:
    found = DISPUTE_TRANSITIONS.get((status, says))
    if found is None:
        outcome = ReversalOutcome.INQUIRY_NOTED if says is DisputeSays.INQUIRY else ReversalOutcome.UNCHANGED
        return DisputeDecision(status, status, None, outcome)
    status_after, movement, outcome = found
    return DisputeDecision(status, status_after, movement, outcome)


def reversal_transaction(
    reason: Reason,
    split: Split,
    *,
    movement: Movement,
    clearing_id: str,
    wallet_id: str,
    uncollected_id: str,
    reference_id: str,
) -> Transaction:
    """The balanced transaction of a debit (or of its exact reverse); empty legs are left out."""
    sign = 1 if movement is Movement.DEBIT else -1
    legs = [
        (clearing_id, sign * split.amount_units),
        (wallet_id, -sign * split.wallet_units),
        (uncollected_id, -sign * split.uncollected_units),
    ]
    return Transaction.of(
        reason.value,
        [Posting(account_id, amount, reason.value) for account_id, amount in legs if amount],
        reference_type=REVERSAL_REFERENCE_TYPE,
        reference_id=reference_id,
    )
