"""Authorization holds (SPEC §18): the gateway reserves the most a model call may cost
before it starts; the usage event captures the real price.

A hold is ``held`` until exactly one of three transitions ends it: ``captured`` (a usage
event posted its price), ``released`` (the gateway voided it) or ``expired`` (its
``expires_at`` passed). Ended holds never change again. While a hold is held its amount is
part of the wallet's ``reserved_units`` (with open payouts), so nothing else can spend it.

Pure: no I/O, no clock — callers pass ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from .ledger import Posting, Reason, Transaction
from .outcomes import InvalidState, LedgerInvariantViolation

DEFAULT_TTL_SECONDS = 300
MAX_TTL_SECONDS = 3600
HOLD_NOT_FOUND = "Hold was not found."


class HoldStatus(StrEnum):
    HELD = "held"
    CAPTURED = "captured"
    RELEASED = "released"
    EXPIRED = "expired"


OPEN_HOLD_STATUSES = frozenset({HoldStatus.HELD})  # reserved on the wallet; ended_at not set yet

# The only allowed transitions: out of ``held``, once.
TRANSITIONS: frozenset[tuple[HoldStatus, HoldStatus]] = frozenset(
    (HoldStatus.HELD, end) for end in (HoldStatus.CAPTURED, HoldStatus.RELEASED, HoldStatus.EXPIRED)
)


def can_move(current: HoldStatus, target: HoldStatus) -> bool:
    return (current, target) in TRANSITIONS


def require_move(current: HoldStatus, target: HoldStatus) -> None:
    if not can_move(current, target):
        raise InvalidState(
            f"A {current.value} hold cannot become {target.value}.",
            details={"status": current.value, "requested": target.value},
        )


def is_open(status: HoldStatus, expires_at: datetime, now: datetime) -> bool:
    """Held and not yet past its expiry: the only hold a capture may use."""
    return status is HoldStatus.HELD and now < expires_at


@dataclass(frozen=True, slots=True)
class Capture:
    """How a captured call's price is paid: ``collected_units`` from the wallet, the
    ``uncollected_units`` rest by the platform's ``uncollected_usage`` account."""

    collected_units: int
    uncollected_units: int


def split_capture(price_units: int, available_units: int) -> Capture:
    """The shortfall rule: the wallet pays what it has available (its hold already released
    into it), never going below zero; the rest is uncollected. ``price = collected + uncollected``."""
    if price_units < 0 or available_units < 0:
        raise ValueError("price and available amounts are never negative")
    collected = min(price_units, available_units)
    return Capture(collected, price_units - collected)


def with_shortfall(
    transaction: Transaction, *, wallet_id: str, uncollected_account_id: str, uncollected_units: int
) -> Transaction:
    """A usage transaction whose end-user debit is cut by ``uncollected_units``, the cut
    debited to the platform's ``uncollected_usage`` account instead (reason
    ``usage_uncollected``): every other leg is paid in full and the postings still balance."""
    if uncollected_units == 0:
        return transaction
    postings: list[Posting] = []
    for posting in transaction.postings:
        if posting.account_id != wallet_id or posting.reason != Reason.USAGE_RETAIL_PRICE.value:
            postings.append(posting)
            continue
        collected = -posting.amount_units - uncollected_units
        if collected < 0:
            raise LedgerInvariantViolation("the uncollected part exceeds the call's price")
        if collected > 0:
            postings.append(Posting.debit(wallet_id, collected, posting.reason))
        postings.append(Posting.debit(uncollected_account_id, uncollected_units, Reason.USAGE_UNCOLLECTED.value))
    return replace(transaction, postings=tuple(postings))
