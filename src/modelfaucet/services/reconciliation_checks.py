"""Every reconciliation check: each names the rows that break one rule of the books.

A check reads through the unit of work it is given (``uow.reports``, ``uow.ledger``) and
returns a :class:`CheckResult`; :func:`run_checks` runs all of them, in the order the
report lists them. The ledger-wide checks come first (the invariants of ARCHITECTURE.md),
then each operation's own expectations: top-ups, usage events, payouts. A new rule is one
more function here and one more line in :func:`run_checks`, so none can be forgotten.

Offending rows are listed with their amounts in USD (they go straight into the report);
:data:`MAX_LISTED` caps how many a report shows, ``offending_count`` says how many there are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..domain.ledger import CONSTRAINED_SCOPES, WALLET_SCOPES, OwnerScope, SystemAccount
from ..domain.money import format_usd
from .repositories import AccountBalance, ReportRepository
from .unit_of_work import UnitOfWork

# How many offending rows a check lists before it only counts them.
MAX_LISTED = 100


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    description: str
    offending: tuple[Mapping[str, Any], ...] = field(default=())
    offending_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "description": self.description,
            "offending_count": self.offending_count,
            "offending": [dict(row) for row in self.offending[:MAX_LISTED]],
        }


def _result(
    name: str, description: str, offending: Sequence[Mapping[str, Any]], count: int | None = None
) -> CheckResult:
    return CheckResult(
        name=name,
        ok=not offending if count is None else count == 0,
        description=description,
        offending=tuple(offending),
        offending_count=len(offending) if count is None else count,
    )


def run_checks(uow: UnitOfWork, balances: Sequence[AccountBalance]) -> list[CheckResult]:
    """All checks, ledger-wide first; ``balances`` are every account's (read in ``uow``)."""
    return [
        system_accounts_match_ledger(balances),
        transactions_balanced(uow.reports),
        balances_sum_to_zero(balances),
        wallets_cover_reservations(balances),
        credited_topups_posted_once(uow),
        usage_events_have_their_postings(uow.reports),
        reservations_match_open_payouts(uow.reports),
        paid_payouts_posted(uow.reports),
    ]


# --- the ledger ---------------------------------------------------------------------------


def balance_item(line: AccountBalance) -> dict[str, Any]:
    """An account's stored and rebuilt balance, as the report's items list it."""
    return {
        "wallet_id": line.account_id,
        "owner_scope": line.owner_scope,
        "owner_id": line.owner_id,
        "wallet_balance_usd": format_usd(line.stored_units),
        "ledger_balance_usd": format_usd(line.rebuilt_units),
        "delta_usd": format_usd(line.delta_units),
        "status": "balanced" if line.delta_units == 0 else "mismatch",
    }


def system_accounts_match_ledger(balances: Sequence[AccountBalance]) -> CheckResult:
    return _result(
        "system_accounts_match_ledger",
        "Each system account's stored balance equals its rebuilt ledger balance.",
        [balance_item(line) for line in balances if line.owner_scope not in WALLET_SCOPES and line.delta_units != 0],
    )


def transactions_balanced(reports: ReportRepository) -> CheckResult:
    found = reports.unbalanced_transactions(limit=MAX_LISTED)
    return _result(
        "transactions_balanced",
        "Every transaction has two or more postings whose debits equal its credits.",
        [
            {
                "transaction_id": txn.transaction_id,
                "sum_usd": format_usd(txn.sum_units),
                "posting_count": txn.posting_count,
            }
            for txn in found.listed
        ],
        count=found.count,
    )


def balances_sum_to_zero(balances: Sequence[AccountBalance]) -> CheckResult:
    stored = sum(line.stored_units for line in balances)
    rebuilt = sum(line.rebuilt_units for line in balances)
    offending = []
    if stored != 0:
        offending.append({"kind": "stored_balances", "sum_usd": format_usd(stored)})
    if rebuilt != 0:
        offending.append({"kind": "ledger_postings", "sum_usd": format_usd(rebuilt)})
    return _result(
        "balances_sum_to_zero",
        "The balances of all accounts, stored and rebuilt, sum to zero.",
        offending,
    )


def wallets_cover_reservations(balances: Sequence[AccountBalance]) -> CheckResult:
    return _result(
        "wallets_cover_reservations",
        "No end-user or developer wallet is below zero or below its reserved amount.",
        [
            {
                "wallet_id": line.account_id,
                "owner_scope": line.owner_scope,
                "balance_usd": format_usd(line.stored_units),
                "reserved_usd": format_usd(line.reserved_units),
            }
            for line in balances
            if line.owner_scope in CONSTRAINED_SCOPES
            and (line.stored_units < line.reserved_units or line.reserved_units < 0)
        ],
    )


# --- top-ups ------------------------------------------------------------------------------


def credited_topups_posted_once(uow: UnitOfWork) -> CheckResult:
    """Each credited top-up has one transaction: +amount on its wallet, −amount on Stripe
    clearing, nothing else; and every ``stripe_checkout_topup`` transaction belongs to one."""
    clearing = uow.ledger.id_for(OwnerScope.SYSTEM, SystemAccount.STRIPE_CLEARING.value)
    postings = uow.reports.topup_postings()
    offending: list[dict[str, Any]] = []
    claimed: set[str] = set()
    for topup in uow.reports.credited_topups():
        expected = sorted([(topup.account_id, topup.amount_units), (clearing or "", -topup.amount_units)])
        problem: str | None = None
        if topup.transaction_id is None:
            problem = "credited top-up has no ledger transaction"
        elif topup.transaction_id in claimed:
            problem = "ledger transaction is shared with another top-up"
        elif sorted(postings.get(topup.transaction_id, [])) != expected:
            problem = "ledger postings differ from wallet credit + Stripe clearing debit of the amount"
        if topup.transaction_id is not None:
            claimed.add(topup.transaction_id)
        if problem is not None:
            offending.append({"topup_id": topup.topup_id, "transaction_id": topup.transaction_id, "problem": problem})
    for transaction_id in sorted(set(postings) - claimed):
        offending.append(
            {
                "topup_id": None,
                "transaction_id": transaction_id,
                "problem": "stripe_checkout_topup transaction without a credited top-up",
            }
        )
    return _result(
        "credited_topups_posted_once",
        "Every credited top-up has exactly one transaction crediting its wallet and debiting "
        "Stripe clearing by its amount, and no top-up transaction lacks a credited top-up.",
        offending[:MAX_LISTED],
        count=len(offending),
    )


# --- usage --------------------------------------------------------------------------------


def usage_events_have_their_postings(reports: ReportRepository) -> CheckResult:
    """For each usage event the postings of its transaction, summed per role (reason), equal
    the event's stored amounts: ``usage_retail_price`` = −retail, ``usage_provider_cost`` =
    upstream, ``usage_channel_revenue`` = channel, ``usage_platform_revenue`` = platform,
    nothing else; a priced event has a transaction and a free one none."""
    # One more than is listed, to tell "exactly MAX_LISTED" from "more".
    found = reports.usage_posting_mismatches(limit=MAX_LISTED + 1)
    return _result(
        "usage_events_have_their_postings",
        "Every usage event has exactly its postings (retail, provider cost, channel, platform).",
        [
            {
                "request_id": event.request_id,
                "transaction_id": event.transaction_id,
                "retail_price_usd": format_usd(event.retail_price_units),
                "posted_retail_usd": format_usd(event.posted_retail_units),
                "upstream_cost_usd": format_usd(event.upstream_cost_units),
                "posted_upstream_usd": format_usd(event.posted_upstream_units),
                "channel_revenue_usd": format_usd(event.channel_revenue_units),
                "posted_channel_usd": format_usd(event.posted_channel_units),
                "platform_revenue_usd": format_usd(event.platform_revenue_units),
                "posted_platform_usd": format_usd(event.posted_platform_units),
            }
            for event in found
        ],
    )


# --- payouts ------------------------------------------------------------------------------


def reservations_match_open_payouts(reports: ReportRepository) -> CheckResult:
    return _result(
        "reservations_match_open_payouts",
        "Each wallet's reserved amount equals the sum of its open holds and its pending and processing payouts.",
        [
            {
                "wallet_id": found.account_id,
                "reserved_usd": format_usd(found.reserved_units),
                "open_payouts_usd": format_usd(found.open_payouts_units),
                "open_holds_usd": format_usd(found.open_holds_units),
            }
            for found in reports.reservation_mismatches()
        ],
    )


def paid_payouts_posted(reports: ReportRepository) -> CheckResult:
    return _result(
        "paid_payouts_posted",
        "Every paid payout has one mock_payout_paid debit of exactly its amount.",
        [
            {
                "payout_id": found.payout_id,
                "amount_usd": format_usd(found.amount_units),
                "debited_usd": None if found.debited_units is None else format_usd(found.debited_units),
            }
            for found in reports.paid_payout_mismatches()
        ],
    )
