"""Where each ledger transaction came from: the reads behind the provenance checks.

Reconciliation must not trust a single table: a forged but balanced transaction, or an
edited source row, is caught only by tying every transaction to the row that caused it
(top-up, usage event, adjustment, payout, seed) and operator actions to their audit rows.
These queries hand the checks plain records; the matching is done in
``services/reconciliation_provenance.py``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import Connection, and_, func, select, text

from ....services.repositories import (
    AuditTie,
    LedgerTransactionRecord,
    SourceRow,
)
from ..tables import adjustments, audit_log, ledger_postings, ledger_transactions, payouts, usage_events

APPEND_ONLY_TABLES = ("ledger_transactions", "ledger_postings")


class SqlProvenance:
    """Implements :class:`modelfaucet.services.repositories.ProvenanceRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    def transaction_counts_by_reason(self) -> dict[str, int]:
        rows = self.connection.execute(
            select(ledger_transactions.c.reason, func.count()).group_by(ledger_transactions.c.reason)
        )
        return {reason: int(count) for reason, count in rows}

    def transactions(
        self, reasons: list[str], *, exclude: bool = False, limit: int | None = None
    ) -> list[LedgerTransactionRecord]:
        """Transactions with (or, with ``exclude``, without) one of ``reasons``, with postings."""
        t = ledger_transactions.c
        condition = t.reason.not_in(reasons) if exclude else t.reason.in_(reasons)
        stmt = select(t.id, t.reason, t.reference_type, t.reference_id).where(condition).order_by(t.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        found = {
            row.id: LedgerTransactionRecord(row.id, row.reason, row.reference_type, row.reference_id, [])
            for row in self.connection.execute(stmt)
        }
        ids = list(found)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            postings = self.connection.execute(
                select(
                    ledger_postings.c.transaction_id, ledger_postings.c.account_id, ledger_postings.c.amount_units
                ).where(ledger_postings.c.transaction_id.in_(chunk))
            )
            for transaction_id, account_id, amount in postings:
                found[transaction_id].postings.append((account_id, int(amount)))
        return list(found.values())

    def usage_event_transaction_count(self) -> int:
        return int(
            self.connection.execute(
                select(func.count(func.distinct(usage_events.c.transaction_id))).where(
                    usage_events.c.transaction_id.is_not(None)
                )
            ).scalar_one()
        )

    def usage_transactions_without_their_event(self, reason: str, limit: int) -> list[str]:
        """Usage transactions that no usage event claims (run only when the counts differ)."""
        claimed = select(usage_events.c.id).where(usage_events.c.transaction_id == ledger_transactions.c.id)
        rows = self.connection.execute(
            select(ledger_transactions.c.id)
            .where(and_(ledger_transactions.c.reason == reason, ~claimed.exists()))
            .order_by(ledger_transactions.c.id)
            .limit(limit)
        )
        return [row.id for row in rows]

    def adjustment_rows(self) -> list[SourceRow]:
        a = adjustments.c
        return [
            SourceRow(row.id, row.account_id, int(row.amount_units), row.transaction_id, f"{row.kind}.{row.direction}")
            for row in self.connection.execute(
                select(a.id, a.account_id, a.amount_units, a.transaction_id, a.kind, a.direction).order_by(a.id)
            )
        ]

    def paid_payout_rows(self) -> list[SourceRow]:
        p = payouts.c
        return [
            SourceRow(row.id, row.account_id, int(row.amount_units), row.transaction_id, row.status)
            for row in self.connection.execute(
                select(p.id, p.account_id, p.amount_units, p.transaction_id, p.status)
                .where(p.transaction_id.is_not(None) | (p.status == "paid"))
                .order_by(p.id)
            )
        ]

    def audit_ties(self, resource_type: str, actions: list[str]) -> dict[str, list[AuditTie]]:
        """Audit rows of ``resource_type`` with one of ``actions``, by resource id."""
        ties: dict[str, list[AuditTie]] = defaultdict(list)
        rows = self.connection.execute(
            select(audit_log.c.resource_id, audit_log.c.action, audit_log.c.amount_units, audit_log.c.details).where(
                and_(audit_log.c.resource_type == resource_type, audit_log.c.action.in_(actions))
            )
        )
        for resource_id, action, amount, details in rows:
            ties[resource_id or ""].append(
                AuditTie(action, None if amount is None else int(amount), dict(details or {}))
            )
        return dict(ties)

    def append_only_guards(self) -> set[str]:
        """Names of the installed triggers that keep ledger rows append-only."""
        if self.connection.dialect.name == "postgresql":
            rows = self.connection.execute(
                text(
                    "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "JOIN pg_proc p ON p.oid = t.tgfoid "
                    "WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' AND c.relname = ANY(:tables) "
                    "AND p.proname = 'modelfaucet_refuse_ledger_change'"
                ),
                {"tables": list(APPEND_ONLY_TABLES)},
            )
        else:
            rows = self.connection.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN "
                    "('ledger_transactions', 'ledger_postings') AND sql LIKE '%RAISE(ABORT%'"
                )
            )
        return {row[0] for row in rows}

    def expected_append_only_guards(self) -> set[str]:
        if self.connection.dialect.name == "postgresql":
            return {f"{table}_append_only" for table in APPEND_ONLY_TABLES}
        return {f"{table}_no_{action}" for table in APPEND_ONLY_TABLES for action in ("update", "delete")}
