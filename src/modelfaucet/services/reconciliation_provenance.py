"""Provenance checks: reconciliation trusts no single table.

Balanced postings and matching balances prove the books add up, not that each movement
was caused by something real. Someone with write access to the database can insert a
balanced transaction with a plausible reason, or double both legs of a real adjustment
after dropping the append-only triggers, or edit an adjustment's amount. These checks tie
every ledger transaction to the row that caused it, and operator actions to their audit
rows, in both directions:

- every transaction's reason is one this service writes;
- usage: every usage transaction is claimed by a usage event (counted first; offenders
  are named only when the counts differ — the per-event postings check is elsewhere);
- adjustments: each adjustment has exactly one transaction of its kind's reason whose
  postings are ±amount on its wallet and ∓amount on its kind's contra account, and an
  audit row with the same action, amount and transaction; no adjustment transaction
  lacks its adjustment;
- payouts: each paid payout has exactly its transaction (wallet −amount, payout clearing
  +amount) and its ``payout.mark_paid`` audit row; no payout transaction lacks a paid payout;
- seed: each opening-balance transaction is the only one of its reference, credits a
  wallet against seed equity, and has its ``seed.opening_balance`` audit row;
- the append-only guards (triggers) are installed;
- Stripe refunds and disputes: each of their transactions is claimed by exactly one posting
  row of its refund or dispute, with exactly the legs that row says (Stripe clearing, the
  wallet, uncollected usage); a refund's postings add up to its refunded total, a dispute
  was debited once, and reversed once only if won.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..domain.ledger import OwnerScope, Reason, SystemAccount
from ..domain.money import cents_to_units, format_usd
from ..domain.reversals import REASON_OF, Movement, ReversalKind, ReversalStatus, Split, reversal_transaction
from .reconciliation_checks import MAX_LISTED, CheckResult
from .repositories import AuditTie, LedgerTransactionRecord, SourceRow
from .unit_of_work import UnitOfWork

ADJUSTMENT_REASONS = {
    "adjustment": (Reason.WALLET_ADJUSTMENT, SystemAccount.ADJUSTMENT_CONTRA),
    "refund": (Reason.WALLET_REFUND, SystemAccount.REFUND_CONTRA),
    "chargeback": (Reason.WALLET_CHARGEBACK, SystemAccount.CHARGEBACK_CONTRA),
}


def _check(name: str, description: str, offending: list[dict[str, Any]]) -> CheckResult:
    return CheckResult(
        name=name,
        ok=not offending,
        description=description,
        offending=tuple(offending[:MAX_LISTED]),
        offending_count=len(offending),
    )


def transactions_have_known_reasons(uow: UnitOfWork) -> CheckResult:
    known = sorted(reason.value for reason in Reason)
    counts = uow.provenance.transaction_counts_by_reason()
    unknown_count = sum(count for reason, count in counts.items() if reason not in known)
    strangers = uow.provenance.transactions(known, exclude=True, limit=MAX_LISTED) if unknown_count else []
    return CheckResult(
        name="transactions_have_known_reasons",
        ok=unknown_count == 0,
        description="Every ledger transaction carries a reason this service writes.",
        offending=tuple({"transaction_id": t.id, "reason": t.reason, "problem": "unknown reason"} for t in strangers),
        offending_count=unknown_count,
    )


def usage_transactions_have_their_event(uow: UnitOfWork) -> CheckResult:
    reason = Reason.USAGE_RETAIL_PRICE.value
    posted = uow.provenance.transaction_counts_by_reason().get(reason, 0)
    claimed = uow.provenance.usage_event_transaction_count()
    offending: list[dict[str, Any]] = []
    if posted != claimed:
        orphans = uow.provenance.usage_transactions_without_their_event(reason, MAX_LISTED)
        offending = [
            {"transaction_id": transaction_id, "problem": "usage transaction without its usage event"}
            for transaction_id in orphans
        ]
        if not offending:
            offending = [{"problem": f"{posted} usage transactions but {claimed} usage events claim one"}]
    return _check(
        "usage_transactions_have_their_event",
        "Every usage transaction is claimed by exactly one usage event.",
        offending,
    )


def adjustments_tie_to_postings_and_audit(uow: UnitOfWork) -> CheckResult:
    contra = {
        kind: uow.ledger.id_for(OwnerScope.SYSTEM, account.value) for kind, (_, account) in ADJUSTMENT_REASONS.items()
    }
    reasons = [reason.value for reason, _ in ADJUSTMENT_REASONS.values()]
    transactions = {t.id: t for t in uow.provenance.transactions(reasons)}
    actions = [f"wallet.{kind}.{direction}" for kind in ADJUSTMENT_REASONS for direction in ("credit", "debit")]
    audits = uow.provenance.audit_ties("adjustment", actions)

    def expected(row: SourceRow) -> tuple[str, list[tuple[str, int]]]:
        kind, direction = row.label.split(".", 1)
        reason, _ = ADJUSTMENT_REASONS[kind]
        sign = 1 if direction == "credit" else -1
        legs = sorted([(row.account_id, sign * row.amount_units), (contra[kind] or "", -sign * row.amount_units)])
        return reason.value, legs

    offending = _tie_rows(
        uow.provenance.adjustment_rows(),
        transactions,
        audits,
        expected=expected,
        audit_action=lambda row: f"wallet.{row.label}",
        what="adjustment",
    )
    return _check(
        "adjustments_tie_to_postings_and_audit",
        "Every adjustment has exactly its transaction (its wallet against its kind's contra account, by its "
        "amount) and its audit row; no adjustment transaction lacks its adjustment.",
        offending,
    )


def paid_payouts_tie_to_postings_and_audit(uow: UnitOfWork) -> CheckResult:
    clearing = uow.ledger.id_for(OwnerScope.SYSTEM, SystemAccount.PAYOUT_CLEARING.value) or ""
    transactions = {t.id: t for t in uow.provenance.transactions([Reason.MOCK_PAYOUT_PAID.value])}
    audits = uow.provenance.audit_ties("payout", ["payout.mark_paid"])

    def expected(row: SourceRow) -> tuple[str, list[tuple[str, int]]]:
        return Reason.MOCK_PAYOUT_PAID.value, sorted(
            [(row.account_id, -row.amount_units), (clearing, row.amount_units)]
        )

    rows = uow.provenance.paid_payout_rows()
    offending = [
        {"source_id": row.id, "problem": f"a {row.label} payout has a payment transaction"}
        for row in rows
        if row.label != "paid"
    ]
    offending += _tie_rows(
        [row for row in rows if row.label == "paid"],
        transactions,
        audits,
        expected=expected,
        audit_action=lambda _row: "payout.mark_paid",
        what="payout",
    )
    return _check(
        "paid_payouts_tie_to_postings_and_audit",
        "Every paid payout has exactly its payment transaction and its mark-paid audit row; no payment "
        "transaction lacks a paid payout.",
        offending,
    )


def seed_openings_tie_to_audit(uow: UnitOfWork) -> CheckResult:
    equity = uow.ledger.id_for(OwnerScope.SYSTEM, SystemAccount.SEED_EQUITY.value) or ""
    audits = uow.provenance.audit_ties("wallet", ["seed.opening_balance"])
    offending: list[dict[str, Any]] = []
    seen: set[tuple[str | None, str | None]] = set()
    for txn in uow.provenance.transactions([Reason.SEED_OPENING_BALANCE.value]):
        reference = (txn.reference_type, txn.reference_id)
        credits = [(account, amount) for account, amount in txn.postings if amount > 0]
        problem = None
        if txn.reference_type != "seed" or reference in seen:
            problem = "opening balance without a seed reference of its own"
        elif len(credits) != 1 or _legs(txn) != sorted([credits[0], (equity, -credits[0][1])]):
            problem = "opening balance is not one wallet credit against seed equity"
        elif not any(tie.amount_units == credits[0][1] for tie in audits.get(credits[0][0], [])):
            problem = "opening balance without its seed.opening_balance audit row"
        seen.add(reference)
        if problem is not None:
            offending.append({"transaction_id": txn.id, "problem": problem})
    return _check(
        "seed_openings_tie_to_audit",
        "Every seed opening balance is one wallet credit against seed equity, once per seed reference, "
        "with its audit row.",
        offending,
    )


def append_only_guards_installed(uow: UnitOfWork) -> CheckResult:
    missing = sorted(uow.provenance.expected_append_only_guards() - uow.provenance.append_only_guards())
    return _check(
        "append_only_guards_installed",
        "The triggers that refuse any UPDATE or DELETE of ledger rows are installed and enabled.",
        [{"trigger": name, "problem": "missing or disabled"} for name in missing],
    )


def stripe_reversals_tie_to_postings(uow: UnitOfWork) -> CheckResult:
    clearing = uow.ledger.id_for(OwnerScope.SYSTEM, SystemAccount.STRIPE_CLEARING.value) or ""
    uncollected = uow.ledger.id_for(OwnerScope.SYSTEM, SystemAccount.UNCOLLECTED_USAGE.value) or ""
    transactions = {t.id: t for t in uow.provenance.transactions(sorted({r.value for r in REASON_OF.values()}))}
    reversals = {r.id: r for r in uow.topups.reversals()}
    offending: list[dict[str, Any]] = []
    claimed: set[str] = set()
    posted_units: dict[str, int] = dict.fromkeys(reversals, 0)
    movements: dict[str, list[Movement]] = {reversal_id: [] for reversal_id in reversals}
    for posting in uow.topups.reversal_postings():
        reversal = reversals.get(posting.reversal_id)
        txn = transactions.get(posting.transaction_id)
        problem = None
        if reversal is None or (reversal.kind, posting.movement) not in REASON_OF:
            problem = "posting row without its refund or dispute"
        elif txn is None:
            problem = "refund or dispute posting without its ledger transaction"
        elif posting.transaction_id in claimed:
            problem = "ledger transaction is shared with another refund or dispute posting"
        else:
            split = Split(posting.wallet_units, posting.uncollected_units)
            expected = reversal_transaction(
                REASON_OF[(reversal.kind, posting.movement)],
                split,
                movement=posting.movement,
                clearing_id=clearing,
                wallet_id=reversal.account_id,
                uncollected_id=uncollected,
                reference_id=posting.id,
            )
            if (txn.reason, txn.reference_type, txn.reference_id) != (
                expected.reason,
                expected.reference_type,
                expected.reference_id,
            ):
                problem = "ledger transaction does not name this posting with its reason"
            elif _legs(txn) != sorted((p.account_id, p.amount_units) for p in expected.postings):
                problem = f"ledger postings differ from the posting row ({format_usd(split.amount_units)} USD)"
            posted_units[reversal.id] += split.amount_units if posting.movement is Movement.DEBIT else 0
            movements[reversal.id].append(posting.movement)
        claimed.add(posting.transaction_id)
        if problem is not None:
            offending.append({"source_id": posting.id, "transaction_id": posting.transaction_id, "problem": problem})
    for transaction_id in sorted(set(transactions) - claimed):
        offending.append(
            {
                "source_id": None,
                "transaction_id": transaction_id,
                "problem": "ledger transaction without its posting row",
            }
        )
    for reversal in reversals.values():
        moved = movements[reversal.id]
        if reversal.kind is ReversalKind.REFUND:
            wrong = posted_units[reversal.id] != cents_to_units(reversal.amount_cents)
            problem = "refund postings do not add up to its refunded total" if wrong else None
        else:
            debits, reverses = moved.count(Movement.DEBIT), moved.count(Movement.REVERSE)
            won = reversal.status is ReversalStatus.WON
            expected_counts = {(debits, debits)} if won else {(1, 0)}
            wrong = debits > 1 or (debits, reverses) not in expected_counts
            problem = (
                f"a {reversal.status} dispute was debited {debits} and reversed {reverses} times" if wrong else None
            )
        if problem is not None:
            offending.append({"source_id": reversal.id, "transaction_id": None, "problem": problem})
    return _check(
        "stripe_reversals_tie_to_postings",
        "Every Stripe refund or dispute transaction has its posting row and exactly its legs; refunds add up to "
        "their refunded totals; a dispute is debited once, and reversed once only if won.",
        offending,
    )


PROVENANCE_CHECKS: tuple[Callable[[UnitOfWork], CheckResult], ...] = (
    transactions_have_known_reasons,
    usage_transactions_have_their_event,
    adjustments_tie_to_postings_and_audit,
    paid_payouts_tie_to_postings_and_audit,
    seed_openings_tie_to_audit,
    append_only_guards_installed,
    stripe_reversals_tie_to_postings,
)


def _legs(txn: LedgerTransactionRecord) -> list[tuple[str, int]]:
    return sorted(txn.postings)


def _tie_rows(
    rows: list[SourceRow],
    transactions: dict[str, LedgerTransactionRecord],
    audits: dict[str, list[AuditTie]],
    *,
    expected: Callable[[SourceRow], tuple[str, list[tuple[str, int]]]],
    audit_action: Callable[[SourceRow], str],
    what: str,
) -> list[dict[str, Any]]:
    """Match source rows and their transactions both ways; name every mismatch."""
    offending: list[dict[str, Any]] = []
    claimed: set[str] = set()
    for row in rows:
        reason, legs = expected(row)
        txn = None if row.transaction_id is None else transactions.get(row.transaction_id)
        problem = None
        if txn is None:
            problem = f"{what} without its ledger transaction"
        elif row.transaction_id in claimed:
            problem = f"{what} shares its ledger transaction with another"
        elif txn.reason != reason or txn.reference_id != row.id:
            problem = f"ledger transaction does not name this {what} with the {reason} reason"
        elif _legs(txn) != legs:
            problem = f"ledger postings differ from the {what}'s amount ({format_usd(row.amount_units)}) and accounts"
        elif not any(
            tie.action == audit_action(row)
            and tie.amount_units == row.amount_units
            and tie.details.get("transaction_id") == row.transaction_id
            for tie in audits.get(row.id, [])
        ):
            problem = f"{what} without its audit row (same action, amount and transaction)"
        if row.transaction_id is not None:
            claimed.add(row.transaction_id)
        if problem is not None:
            offending.append({"source_id": row.id, "transaction_id": row.transaction_id, "problem": problem})
    for transaction_id in sorted(set(transactions) - claimed):
        offending.append(
            {"source_id": None, "transaction_id": transaction_id, "problem": f"ledger transaction without its {what}"}
        )
    return offending
