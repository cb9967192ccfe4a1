"""Statements and point-in-time balances (SPEC §19): one wallet's postings by creation time.

Every query is a range of ``ix_ledger_postings_account_created`` (account, created_at, id),
so its cost follows the wallet's own postings in the range, never the size of the ledger.

A balance at an instant is rebuilt from postings, from whichever side of the instant is
likely the shorter read: the sum of the postings before it, or the stored balance minus
the postings at or after it (the stored balance equals the sum of all postings, invariant
3, which reconciliation checks). The second form is one statement, so it reads the stored
balance and the postings at one moment even outside a snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import Connection, and_, func, select

from ....services.repositories import StatementLine
from ..tables import accounts, ledger_postings, ledger_transactions

# Rows fetched from the server-side cursor per round trip.
YIELD_PER = 2000


class SqlStatements:
    """Implements :class:`modelfaucet.services.repositories.StatementRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    def balance_before(self, account_id: str, instant: datetime) -> int:
        p = ledger_postings.c
        opened = self.connection.execute(select(accounts.c.created_at).where(accounts.c.id == account_id)).scalar()
        if opened is None:
            return 0
        if _nearer_the_start(instant, opened=opened, now=self.now):
            before = select(func.coalesce(func.sum(p.amount_units), 0)).where(
                and_(p.account_id == account_id, p.created_at < instant)
            )
            return int(self.connection.execute(before).scalar_one())
        since = (
            select(func.coalesce(func.sum(p.amount_units), 0))
            .where(and_(p.account_id == account_id, p.created_at >= instant))
            .scalar_subquery()
        )
        stored_minus_since = select(accounts.c.balance_units - since).where(accounts.c.id == account_id)
        return int(self.connection.execute(stored_minus_since).scalar_one())

    def totals_by_reason(
        self, account_id: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> dict[str, int]:
        p = ledger_postings.c
        where = [p.account_id == account_id]
        if start is not None:
            where.append(p.created_at >= start)
        if end is not None:
            where.append(p.created_at < end)
        rows = self.connection.execute(
            select(p.reason, func.sum(p.amount_units).label("total")).where(and_(*where)).group_by(p.reason)
        )
        return {row.reason: int(row.total) for row in rows}

    def lines(self, account_id: str, *, start: datetime, end: datetime) -> Iterator[StatementLine]:
        p, t = ledger_postings.c, ledger_transactions.c
        stmt = (
            select(p.id, p.transaction_id, p.amount_units, p.reason, p.created_at, t.reference_type, t.reference_id)
            .join_from(ledger_postings, ledger_transactions, t.id == p.transaction_id)
            .where(and_(p.account_id == account_id, p.created_at >= start, p.created_at < end))
            .order_by(p.created_at, p.id)
        )
        # A server-side cursor, which PostgreSQL plans for its first rows: the range of the
        # wallet's index and one primary-key probe per posting into the transactions, never
        # a scan of every transaction (a plain query of many rows may hash-join one).
        streaming = self.connection.execution_options(stream_results=True, yield_per=YIELD_PER)
        for posting_id, transaction_id, amount, reason, created_at, reference_type, reference_id in streaming.execute(
            stmt
        ):
            yield StatementLine(posting_id, transaction_id, amount, reason, created_at, reference_type, reference_id)


def _nearer_the_start(instant: datetime, *, opened: datetime, now: datetime) -> bool:
    """True when ``instant`` is nearer the account's opening than now: then fewer postings
    probably lie before it than after it (at a steady rate of postings)."""
    if opened.tzinfo is None:  # SQLite hands back naive UTC
        opened = opened.replace(tzinfo=UTC)
    return instant - opened <= now - instant
