"""The double-entry ledger core.

A posting is a signed amount on one account: credits are positive, debits negative.
An account's balance is the sum of its postings (credits − debits). A transaction is a
set of postings that sums to zero, so the sum of all balances is always zero.

End-user and developer wallets are *constrained*: their balance may never drop below
zero, nor below the amount reserved for pending payouts. Platform, provider-cost and
system accounts are unconstrained (system accounts are the other side of money that
enters or leaves the platform, and go negative by design).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .outcomes import LedgerInvariantViolation


class OwnerScope(StrEnum):
    END_USER = "end_user"
    DEVELOPER = "developer"
    PLATFORM = "platform"
    PROVIDER_COST = "provider_cost"
    SYSTEM = "system"


CONSTRAINED_SCOPES = frozenset({OwnerScope.END_USER, OwnerScope.DEVELOPER})
WALLET_SCOPES = frozenset({OwnerScope.END_USER, OwnerScope.DEVELOPER, OwnerScope.PLATFORM, OwnerScope.PROVIDER_COST})


class SystemAccount(StrEnum):
    """The owner ids of the system accounts (owner_scope ``system``)."""

    STRIPE_CLEARING = "stripe_clearing"
    PAYOUT_CLEARING = "payout_clearing"
    SEED_EQUITY = "seed_equity"
    ADJUSTMENT_CONTRA = "adjustment_contra"
    REFUND_CONTRA = "refund_contra"
    CHARGEBACK_CONTRA = "chargeback_contra"
    # What end users spent but the platform could not collect: a refund or dispute that finds
    # the credits already used, or a model call that cost more than the wallet held (SPEC
    # §18, §20). A loss the platform bears, so it goes negative like the other contra accounts
    # and is never a wallet: no adjustment, payout or reconciliation item treats it as one.
    UNCOLLECTED_USAGE = "uncollected_usage"


# Every account's balance, system accounts included, stays within ±MAX_BALANCE_UNITS
# (90 billion USD): inside a signed 64-bit column (9.22e18) with room for the ledger's own
# arithmetic, so no stored balance can overflow BIGINT on PostgreSQL or turn into a REAL on
# SQLite. A posting that would cross it is refused before anything is written.
MAX_BALANCE_UNITS = 9 * 10**18

PLATFORM_OWNER_ID = "platform"
PROVIDER_COST_OWNER_ID = "provider_cost"


class Reason(StrEnum):
    SEED_OPENING_BALANCE = "seed_opening_balance"
    STRIPE_CHECKOUT_TOPUP = "stripe_checkout_topup"
    USAGE_RETAIL_PRICE = "usage_retail_price"
    USAGE_PROVIDER_COST = "usage_provider_cost"
    USAGE_CHANNEL_REVENUE = "usage_channel_revenue"
    USAGE_PLATFORM_REVENUE = "usage_platform_revenue"
    WALLET_ADJUSTMENT = "wallet_adjustment"
    WALLET_REFUND = "wallet_refund"
    WALLET_CHARGEBACK = "wallet_chargeback"
    MOCK_PAYOUT_PAID = "mock_payout_paid"
    STRIPE_REFUND = "stripe_refund"
    STRIPE_DISPUTE = "stripe_dispute"
    STRIPE_DISPUTE_REVERSAL = "stripe_dispute_reversal"
    USAGE_UNCOLLECTED = "usage_uncollected"


@dataclass(frozen=True, slots=True)
class Posting:
    """One signed line of a transaction: ``amount_units`` > 0 credits, < 0 debits."""

    account_id: str
    amount_units: int
    reason: str

    def __post_init__(self) -> None:
        if isinstance(self.amount_units, bool) or not isinstance(self.amount_units, int):
            raise LedgerInvariantViolation("posting amounts are integers of 1e-8 USD")
        if self.amount_units == 0:
            raise LedgerInvariantViolation("a posting must move a non-zero amount")

    @classmethod
    def credit(cls, account_id: str, amount_units: int, reason: str) -> Posting:
        _require_positive(amount_units)
        return cls(account_id, amount_units, reason)

    @classmethod
    def debit(cls, account_id: str, amount_units: int, reason: str) -> Posting:
        _require_positive(amount_units)
        return cls(account_id, -amount_units, reason)


@dataclass(frozen=True, slots=True)
class Transaction:
    """A balanced set of postings. Construction refuses an unbalanced one."""

    reason: str
    postings: tuple[Posting, ...]
    reference_type: str | None = None
    reference_id: str | None = None

    def __post_init__(self) -> None:
        if len(self.postings) < 2:
            raise LedgerInvariantViolation("a transaction needs at least two postings")
        total = sum(p.amount_units for p in self.postings)
        if total != 0:
            raise LedgerInvariantViolation(f"unbalanced transaction: postings sum to {total}, not 0")

    @classmethod
    def of(
        cls,
        reason: str,
        postings: Iterable[Posting],
        *,
        reference_type: str | None = None,
        reference_id: str | None = None,
    ) -> Transaction:
        return cls(reason, tuple(postings), reference_type, reference_id)

    @classmethod
    def transfer(
        cls,
        reason: str,
        *,
        debit: str,
        credit: str,
        amount_units: int,
        reference_type: str | None = None,
        reference_id: str | None = None,
    ) -> Transaction:
        """The two-leg transaction that moves ``amount_units`` from ``debit`` to ``credit``:
        every top-up, adjustment, payout and seed opening is one."""
        return cls.of(
            reason,
            [Posting.credit(credit, amount_units, reason), Posting.debit(debit, amount_units, reason)],
            reference_type=reference_type,
            reference_id=reference_id,
        )

    def net_by_account(self) -> dict[str, int]:
        """The net change of each touched account, accounts in a fixed (sorted) order."""
        net: dict[str, int] = {}
        for posting in self.postings:
            net[posting.account_id] = net.get(posting.account_id, 0) + posting.amount_units
        return {account_id: net[account_id] for account_id in sorted(net)}


@dataclass(slots=True)
class AccountState:
    """The stored state of one account as the posting engine sees it."""

    account_id: str
    owner_scope: OwnerScope
    balance_units: int
    reserved_units: int = 0
    owner_id: str = ""

    @property
    def constrained(self) -> bool:
        return self.owner_scope in CONSTRAINED_SCOPES

    @property
    def available_units(self) -> int:
        return self.balance_units - self.reserved_units


@dataclass(frozen=True, slots=True)
class BalanceCheck:
    """Decision of :func:`apply_net_changes`: new balances, or the first account that cannot pay."""

    new_balances: Mapping[str, int] = field(default_factory=dict)
    short_account_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.short_account_id is None


def apply_net_changes(accounts: Mapping[str, AccountState], net: Mapping[str, int]) -> BalanceCheck:
    """Decide, without I/O, whether ``net`` changes can be applied to ``accounts``.

    New balances are computed in copies; nothing is mutated. A constrained account may not
    end below its reserved amount (and so never below zero).
    """
    new_balances: dict[str, int] = {}
    for account_id, delta in net.items():
        state = accounts.get(account_id)
        if state is None:
            raise LedgerInvariantViolation(f"posting to unknown account {account_id}")
        new_balance = state.balance_units + delta
        if state.constrained and delta < 0 and new_balance < state.reserved_units:
            return BalanceCheck(short_account_id=account_id)
        new_balances[account_id] = new_balance
    return BalanceCheck(new_balances=new_balances)


def _require_positive(amount_units: int) -> None:
    if isinstance(amount_units, bool) or not isinstance(amount_units, int) or amount_units <= 0:
        raise LedgerInvariantViolation("posting amounts must be positive integers of 1e-8 USD")
