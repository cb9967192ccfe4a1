"""Statements and point-in-time balances of any wallet (SPEC §19).

- :func:`balance_as_of`: a wallet's balance rebuilt from its postings created before an
  instant (a posting created exactly at the instant is not in it).
- A statement over a half-open window [from, to): the opening balance (the balance as of
  ``from``), every posting of the window in order with the balance after it, the totals
  per reason, and the closing balance. Always: opening + Σ entries = closing, and closing
  is the balance as of ``to`` — the summary and the entries are read in one snapshot, and
  the last entry's balance is checked against the closing before the stream ends.

A statement is checked before it is read (:func:`statement_of` — the window, the wallet,
whose it is — so a refusal is an ordinary error, never a half-sent body), then read
with :func:`open_statement`, which streams its entries: memory does not grow with their
number. :func:`statement_csv` is its CSV, through the one CSV writer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from ..adapters.csvout import Cell, stream_csv
from ..domain.ledger import OwnerScope
from ..domain.money import format_usd
from ..domain.outcomes import LedgerInvariantViolation
from ..domain.timestamps import iso
from ..domain.windows import Window, reading_window
from .context import ServiceContext
from .repositories import StatementLine
from .unit_of_work import UnitOfWork

STATEMENT_CSV_HEADER = ("posted_at", "transaction_id", "reason", "amount_usd", "balance_after_usd", "reference")
# The CSV's first and last rows carry the opening and closing balances under these names
# (no ledger reason is called so), so the file alone shows opening + Σ amounts = closing.
OPENING_ROW = "opening_balance"
CLOSING_ROW = "closing_balance"


@dataclass(frozen=True, slots=True)
class BalanceAsOf:
    wallet_id: str
    as_of: datetime
    balance_units: int


@dataclass(frozen=True, slots=True)
class StatementOf:
    """A statement that may be read: the wallet exists (and is the caller's) and the window is valid."""

    wallet_id: str
    window: Window


@dataclass(frozen=True, slots=True)
class StatementSummary:
    wallet_id: str
    window: Window
    opening_units: int
    closing_units: int
    totals_by_reason: Mapping[str, int]


class StatementEntry(NamedTuple):
    """One entry of a statement (a named tuple: one is built per posting, see StatementLine)."""

    posted_at: datetime
    transaction_id: str
    reason: str
    amount_units: int  # signed: credit > 0, debit < 0
    balance_after_units: int
    reference: str | None


@dataclass(frozen=True)
class Statement:
    """The summary, and the entries streamed from the same snapshot (read them inside
    the ``open_statement`` block)."""

    summary: StatementSummary
    entries: Iterator[StatementEntry]


def balance_as_of(ctx: ServiceContext, wallet_id: str, *, as_of: datetime | None = None) -> BalanceAsOf:
    """The balance from the wallet's postings created before ``as_of`` (default: now)."""
    with ctx.reader(snapshot=True) as uow:
        uow.ledger.require(wallet_id)
        instant = (uow.now if as_of is None else as_of).astimezone(UTC)
        return BalanceAsOf(wallet_id, instant, uow.statements.balance_before(wallet_id, instant))


def statement_of(
    ctx: ServiceContext, wallet_id: str, *, start: datetime | None = None, end: datetime | None = None
) -> StatementOf:
    """Check the statement of ``wallet_id`` over [start, end) (defaults: see
    :func:`~modelfaucet.domain.windows.reading_window`); an unknown wallet is NotFound."""
    with ctx.reader() as uow:
        return _checked(uow, wallet_id, start, end)


def statement_of_owner(
    ctx: ServiceContext,
    scope: OwnerScope,
    owner_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> StatementOf:
    """The statement of the (scope, owner) wallet: a caller's own wallet, found by who they are."""
    with ctx.reader() as uow:
        return _checked(uow, require_wallet_id(uow, scope, owner_id), start, end)


def require_wallet_id(uow: UnitOfWork, scope: OwnerScope, owner_id: str) -> str:
    """The id of the (scope, owner) wallet; if there is none, the ledger's own NotFound."""
    # "" names no account: the ledger refuses it exactly as it refuses any unknown wallet.
    return uow.ledger.require(uow.ledger.id_for(scope, owner_id) or "").account_id


def _checked(uow: UnitOfWork, wallet_id: str, start: datetime | None, end: datetime | None) -> StatementOf:
    wallet = uow.ledger.require(wallet_id)
    window = reading_window(start, end, now=uow.now)
    return StatementOf(wallet.account_id, window)


@contextmanager
def open_statement(ctx: ServiceContext, of: StatementOf) -> Iterator[Statement]:
    """Read the statement in one snapshot; its entries stream while the block is open."""
    window = of.window
    with ctx.reader(snapshot=True) as uow:
        opening = uow.statements.balance_before(of.wallet_id, window.start)
        totals = uow.statements.totals_by_reason(of.wallet_id, start=window.start, end=window.end)
        summary = StatementSummary(
            wallet_id=of.wallet_id,
            window=window,
            opening_units=opening,
            closing_units=opening + sum(totals.values()),
            totals_by_reason=dict(sorted(totals.items())),
        )
        lines = uow.statements.lines(of.wallet_id, start=window.start, end=window.end)
        yield Statement(summary, _entries(lines, summary))


def _entries(lines: Iterator[StatementLine], summary: StatementSummary) -> Iterator[StatementEntry]:
    balance = summary.opening_units
    for line in lines:
        balance += line.amount_units
        yield StatementEntry(
            line.created_at, line.transaction_id, line.reason, line.amount_units, balance, reference_of(line)
        )
    if balance != summary.closing_units:
        raise LedgerInvariantViolation(
            f"statement of {summary.wallet_id}: the entries end at {balance}, the totals say {summary.closing_units}"
        )


def reference_of(line: StatementLine) -> str | None:
    """What the posting's transaction refers to: ``usage_event:req_123``, ``payout:<id>``…"""
    if line.reference_id is None:
        return line.reference_type
    return line.reference_id if line.reference_type is None else f"{line.reference_type}:{line.reference_id}"


def statement_csv(statement: Statement) -> Iterator[bytes]:
    """The statement as CSV: an opening row, one row per entry, a closing row."""
    return stream_csv(STATEMENT_CSV_HEADER, _csv_rows(statement))


def _csv_rows(statement: Statement) -> Iterator[tuple[Cell, ...]]:
    summary = statement.summary
    yield iso(summary.window.start), "", OPENING_ROW, "", format_usd(summary.opening_units), ""
    for entry in statement.entries:
        yield (
            iso(entry.posted_at),
            entry.transaction_id,
            entry.reason,
            format_usd(entry.amount_units),
            format_usd(entry.balance_after_units),
            entry.reference,
        )
    yield iso(summary.window.end), "", CLOSING_ROW, "", format_usd(summary.closing_units), ""
