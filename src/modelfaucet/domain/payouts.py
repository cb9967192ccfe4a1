"""The payout state machine: every allowed (status, action) pair lives in one table.

A payout is the model of a *pending transfer*: ``run-mock`` creates it ``pending`` and
reserves its amount on the developer wallet (no money moves); it is then either posted
(``mark_paid`` debits the wallet and releases the reservation) or voided (``cancel`` /
``mark_failed`` release the reservation). Approval is required before payment.

:func:`decide` is pure: it names the outcome of an action on a status, and the service
applies that outcome's side effects. A pair not in :data:`TRANSITIONS` is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

PAYOUT_NOT_FOUND = "Payout was not found."


class PayoutStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    CANCELLED = "cancelled"


class PayoutAction(StrEnum):
    APPROVE = "approve"
    MARK_PAID = "mark_paid"
    CANCEL = "cancel"
    MARK_FAILED = "mark_failed"


class Effect(StrEnum):
    TRANSITION = "transition"  # the status changes; side effects apply; audited
    UNCHANGED = "unchanged"  # a repeated action: answer 200 with the payout as it is
    REFUSED = "refused"  # 409 invalid_state; nothing written


# The statuses that hold a reservation on the developer wallet (and block a new payout).
OPEN_STATUSES: Final = frozenset({PayoutStatus.PENDING, PayoutStatus.PROCESSING})

_UNCHANGED: Final = "unchanged"

# (status, action) -> new status, or "unchanged". Anything missing is refused.
TRANSITIONS: Final[dict[tuple[PayoutStatus, PayoutAction], PayoutStatus | str]] = {
    (PayoutStatus.PENDING, PayoutAction.APPROVE): PayoutStatus.PROCESSING,
    (PayoutStatus.PROCESSING, PayoutAction.APPROVE): _UNCHANGED,
    (PayoutStatus.PROCESSING, PayoutAction.MARK_PAID): PayoutStatus.PAID,
    (PayoutStatus.PAID, PayoutAction.MARK_PAID): _UNCHANGED,
    (PayoutStatus.PENDING, PayoutAction.CANCEL): PayoutStatus.CANCELLED,
    (PayoutStatus.PROCESSING, PayoutAction.CANCEL): PayoutStatus.CANCELLED,
    (PayoutStatus.PROCESSING, PayoutAction.MARK_FAILED): PayoutStatus.FAILED,
}

# Why a refused action is refused, for the operator reading the 409.
_REFUSAL_HINTS: Final[dict[PayoutAction, str]] = {
    PayoutAction.APPROVE: "only a pending payout can be approved",
    PayoutAction.MARK_PAID: "a payout must be approved into processing before it can be marked paid",
    PayoutAction.CANCEL: "only a pending or processing payout can be cancelled",
    PayoutAction.MARK_FAILED: "only a processing payout can be marked failed",
}


@dataclass(frozen=True, slots=True)
class Decision:
    effect: Effect
    status_before: PayoutStatus
    status_after: PayoutStatus

    @property
    def releases_reservation(self) -> bool:
        """Leaving an open status for a closed one gives the reserved amount back."""
        return (
            self.effect is Effect.TRANSITION
            and self.status_before in OPEN_STATUSES
            and self.status_after not in OPEN_STATUSES
        )

    @property
    def posts_payment(self) -> bool:
        return self.effect is Effect.TRANSITION and self.status_after is PayoutStatus.PAID


def decide(status: PayoutStatus | str, action: PayoutAction | str) -> Decision:
    current = PayoutStatus(status)
    outcome = TRANSITIONS.get((current, PayoutAction(action)))
    if outcome is None:
        return Decision(Effect.REFUSED, current, current)
    if outcome == _UNCHANGED:
        return Decision(Effect.UNCHANGED, current, current)
    return Decision(Effect.TRANSITION, current, PayoutStatus(outcome))


def refusal_message(status: PayoutStatus | str, action: PayoutAction | str) -> str:
    act = PayoutAction(action)
    return f"Payout is {PayoutStatus(status)}: {_REFUSAL_HINTS[act]}."


def payable_units(*, balance_units: int, reserved_units: int, held_units: int) -> int:
    """What a developer may be paid now: available funds minus revenue still on hold.

    ``held_units`` is the revenue credited within the hold period (it can still be clawed
    back by a chargeback). Never negative.
    """
    return max(0, balance_units - reserved_units - max(0, held_units))
