"""reconcile_ledger: compare stored balances with the ledger and check the invariants.

The seed-shaped part (``summary`` and ``items``) compares each wallet's stored balance with
the balance rebuilt from its postings. The ``checks`` part goes further and names the rows
that break a rule: unbalanced transactions, balances that do not sum to zero, system
accounts out of step, constrained wallets below their reservation, and each operation's
own expectations (owned by their modules, listed in :func:`area_checks`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, select

from ..adapters.db.tables import accounts, ledger_postings, ledger_transactions
from ..domain.ledger import CONSTRAINED_SCOPES, WALLET_SCOPES
from ..domain.money import format_usd
from .context import ServiceContext

# How many offending ids a check lists before it only counts them.
MAX_LISTED = 100


@dataclass
class CheckResult:
    name: str
    ok: bool
    description: str
    offending: list[dict[str, Any]] = field(default_factory=list)
    offending_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "description": self.description,
            "offending_count": self.offending_count,
            "offending": self.offending[:MAX_LISTED],
        }


@dataclass(slots=True)
class AccountLine:
    wallet_id: str
    owner_scope: str
    owner_id: str
    wallet_balance_units: int
    ledger_balance_units: int
    reserved_units: int

    @property
    def delta_units(self) -> int:
        return self.wallet_balance_units - self.ledger_balance_units

    def as_item(self) -> dict[str, Any]:
        delta = self.wallet_balance_units - self.ledger_balance_units
        return {
            "wallet_id": self.wallet_id,
            "owner_scope": self.owner_scope,
            "owner_id": self.owner_id,
            "wallet_balance_usd": format_usd(self.wallet_balance_units),
            "ledger_balance_usd": format_usd(self.ledger_balance_units),
            "delta_usd": format_usd(delta),
            "status": "balanced" if delta == 0 else "mismatch",
        }


@dataclass
class ReconciliationReport:
    generated_at: datetime
    items: list[AccountLine]
    checks: list[CheckResult]

    @property
    def mismatch_count(self) -> int:
        return sum(1 for line in self.items if line.delta_units != 0)

    @property
    def ok(self) -> bool:
        return self.mismatch_count == 0 and all(check.ok for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat().replace("+00:00", "Z"),
            "summary": {
                "wallet_count": len(self.items),
                "balanced_count": len(self.items) - self.mismatch_count,
                "mismatch_count": self.mismatch_count,
            },
            "items": [line.as_item() for line in self.items],
            "ok": self.ok,
            "checks": {check.name: check.as_dict() for check in self.checks},
        }


Check = Callable[[Connection], CheckResult]


def area_checks() -> list[Check]:
    """Each operation's own expectations, named here so none can be forgotten.

    Imported when a report runs (those modules import this one for ``CheckResult``).
    """
    from .payouts import check_paid_payouts_posted, check_reservations_match_open_payouts
    from .topups import credited_topups_have_their_postings
    from .usage_checks import usage_postings_check

    return [
        credited_topups_have_their_postings,
        usage_postings_check,
        check_reservations_match_open_payouts,
        check_paid_payouts_posted,
    ]


def reconcile_ledger(ctx: ServiceContext, *, include_checks: bool = True) -> ReconciliationReport:
    with ctx.db.read(snapshot=True) as conn:
        lines = _account_lines(conn)
        wallets = [line for line in lines if line.owner_scope in WALLET_SCOPES]
        system = [line for line in lines if line.owner_scope not in WALLET_SCOPES]
        checks: list[CheckResult] = []
        if include_checks:
            checks.append(_system_accounts_check(system))
            checks.append(_unbalanced_transactions(conn))
            checks.append(_balances_sum_to_zero(lines))
            checks.append(_reservations_respected(lines))
            checks.extend(check(conn) for check in area_checks())
    return ReconciliationReport(generated_at=ctx.clock(), items=wallets, checks=checks)


def _account_lines(conn: Connection) -> list[AccountLine]:
    """Stored and rebuilt balance of every account.

    Two plain queries merged here rather than one join sorted by the database: the
    aggregate is exactly the bare ``SUM() GROUP BY`` an operator would write, and joining
    10k accounts and sorting them in Python costs less than doing it in SQL. The caller's
    snapshot transaction keeps the two queries consistent.
    """
    rebuilt: dict[str, int] = {
        account_id: int(total)
        for account_id, total in conn.execute(
            select(ledger_postings.c.account_id, func.sum(ledger_postings.c.amount_units)).group_by(
                ledger_postings.c.account_id
            )
        )
    }
    rows = conn.execute(
        select(
            accounts.c.id,
            accounts.c.owner_scope,
            accounts.c.owner_id,
            accounts.c.balance_units,
            accounts.c.reserved_units,
        )
    )
    lines = [
        AccountLine(
            wallet_id=account_id,
            owner_scope=owner_scope,
            owner_id=owner_id,
            wallet_balance_units=int(balance),
            ledger_balance_units=rebuilt.get(account_id, 0),
            reserved_units=int(reserved),
        )
        for account_id, owner_scope, owner_id, balance, reserved in rows
    ]
    lines.sort(key=lambda line: (line.owner_scope, line.owner_id))
    return lines


def _system_accounts_check(system: list[AccountLine]) -> CheckResult:
    bad = [line.as_item() for line in system if line.delta_units != 0]
    return CheckResult(
        name="system_accounts_match_ledger",
        ok=not bad,
        description="Each system account's stored balance equals its rebuilt ledger balance.",
        offending=bad,
        offending_count=len(bad),
    )


def _unbalanced_transactions(conn: Connection) -> CheckResult:
    """Every transaction has >= 2 postings summing to zero.

    One streaming pass over the covering (transaction_id, amount_units) index counts the
    transactions that have postings and the ones that break the rule; the slower queries
    that *name* offenders run only when the counts say something is wrong.
    """
    per_txn = (
        select(
            ledger_postings.c.transaction_id,
            func.sum(ledger_postings.c.amount_units).label("total"),
            func.count().label("postings"),
        )
        .group_by(ledger_postings.c.transaction_id)
        .subquery()
    )
    bad_rule = (per_txn.c.total != 0) | (per_txn.c.postings < 2)
    counted = conn.execute(
        select(func.count(), func.coalesce(func.sum(case((bad_rule, 1), else_=0)), 0)).select_from(per_txn)
    ).one()
    with_postings, bad_count = int(counted[0]), int(counted[1])
    transaction_count = int(conn.execute(select(func.count()).select_from(ledger_transactions)).scalar_one())
    orphan_count = transaction_count - with_postings
    offending: list[dict[str, Any]] = []
    if bad_count:
        rows = conn.execute(
            select(per_txn.c.transaction_id, per_txn.c.total, per_txn.c.postings).where(bad_rule).limit(MAX_LISTED)
        )
        offending += [
            {"transaction_id": r.transaction_id, "sum_usd": format_usd(int(r.total)), "posting_count": int(r.postings)}
            for r in rows
        ]
    if orphan_count:
        has_postings = select(ledger_postings.c.id).where(ledger_postings.c.transaction_id == ledger_transactions.c.id)
        rows = conn.execute(select(ledger_transactions.c.id).where(~has_postings.exists()).limit(MAX_LISTED))
        offending += [{"transaction_id": r.id, "sum_usd": format_usd(0), "posting_count": 0} for r in rows]
    return CheckResult(
        name="transactions_balanced",
        ok=not (bad_count or orphan_count),
        description="Every transaction has two or more postings whose debits equal its credits.",
        offending=offending,
        offending_count=bad_count + orphan_count,
    )


def _balances_sum_to_zero(lines: list[AccountLine]) -> CheckResult:
    stored = sum(line.wallet_balance_units for line in lines)
    rebuilt = sum(line.ledger_balance_units for line in lines)
    offending = []
    if stored != 0:
        offending.append({"kind": "stored_balances", "sum_usd": format_usd(stored)})
    if rebuilt != 0:
        offending.append({"kind": "ledger_postings", "sum_usd": format_usd(rebuilt)})
    return CheckResult(
        name="balances_sum_to_zero",
        ok=not offending,
        description="The balances of all accounts, stored and rebuilt, sum to zero.",
        offending=offending,
        offending_count=len(offending),
    )


def _reservations_respected(lines: list[AccountLine]) -> CheckResult:
    bad = [
        {
            "wallet_id": line.wallet_id,
            "owner_scope": line.owner_scope,
            "balance_usd": format_usd(line.wallet_balance_units),
            "reserved_usd": format_usd(line.reserved_units),
        }
        for line in lines
        if line.owner_scope in CONSTRAINED_SCOPES
        and (line.wallet_balance_units < line.reserved_units or line.reserved_units < 0)
    ]
    return CheckResult(
        name="wallets_cover_reservations",
        ok=not bad,
        description="No end-user or developer wallet is below zero or below its reserved amount.",
        offending=bad,
        offending_count=len(bad),
    )
