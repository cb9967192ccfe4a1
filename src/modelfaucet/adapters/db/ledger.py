"""Writes ledger transactions: the only code that inserts postings or moves a balance.

``post`` turns a balanced :class:`~modelfaucet.domain.ledger.Transaction` into rows inside
the caller's database transaction: the stored balance of every touched account moves by
its net change (accounts in sorted id order, so concurrent posts never deadlock), a
constrained wallet is debited only if it stays at or above its reserved amount (checked
in the same UPDATE, so concurrent debits can never overdraw it), then the transaction and
its postings are inserted. If anything fails the caller's transaction rolls back whole.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update

from ...domain.ledger import CONSTRAINED_SCOPES, OwnerScope, Transaction
from ...domain.money import format_usd
from ...domain.outcomes import InsufficientBalance, LedgerInvariantViolation, NotFound
from .bulk import insert_many
from .tables import accounts, ledger_postings, ledger_transactions

_CONSTRAINED = sorted(str(scope) for scope in CONSTRAINED_SCOPES)


def new_id() -> str:
    return str(uuid.uuid4())


def post(connection: Connection, transaction: Transaction, *, now: datetime) -> str:
    """Post ``transaction``; return its id. Raises InsufficientBalance (nothing kept)."""
    for account_id, delta in transaction.net_by_account().items():
        _move_balance(connection, account_id, delta, now=now)
    transaction_id = new_id()
    insert_rows(connection, [(transaction_id, transaction)], now=now)
    return transaction_id


def insert_rows(connection: Connection, items: Sequence[tuple[str, Transaction]], *, now: datetime) -> None:
    """Insert transaction and posting rows (balances are the caller's business); many rows
    go in by COPY on PostgreSQL (:mod:`.bulk`)."""
    if not items:
        return
    insert_many(
        connection,
        ledger_transactions,
        [
            {
                "id": transaction_id,
                "reason": txn.reason,
                "reference_type": txn.reference_type,
                "reference_id": txn.reference_id,
                "created_at": now,
            }
            for transaction_id, txn in items
        ],
    )
    insert_many(
        connection,
        ledger_postings,
        [
            {
                "transaction_id": transaction_id,
                "account_id": posting.account_id,
                "amount_units": posting.amount_units,
                "reason": posting.reason,
                "created_at": now,
            }
            for transaction_id, txn in items
            for posting in txn.postings
        ],
    )


def _move_balance(connection: Connection, account_id: str, delta: int, *, now: datetime) -> None:
    balance = accounts.c.balance_units
    stmt = update(accounts).where(accounts.c.id == account_id)
    if delta < 0:
        stmt = stmt.where(
            or_(
                accounts.c.owner_scope.not_in(_CONSTRAINED),
                balance - accounts.c.reserved_units + delta >= 0,
            )
        )
    result = connection.execute(stmt.values(balance_units=balance + delta, updated_at=now))
    if result.rowcount == 1:
        return
    row = connection.execute(
        select(accounts.c.balance_units, accounts.c.reserved_units).where(accounts.c.id == account_id)
    ).first()
    if row is None:
        raise LedgerInvariantViolation(f"posting to unknown account {account_id}")
    available = row.balance_units - row.reserved_units
    raise InsufficientBalance(
        "Wallet does not have enough balance for this debit.",
        details={
            "wallet_id": account_id,
            "available_usd": format_usd(available),
            "requested_usd": format_usd(-delta),
        },
    )


def ensure_account(
    connection: Connection, insert_factory: Any, scope: OwnerScope, owner_id: str, *, now: datetime
) -> str:
    """Return the id of the (scope, owner) account, creating it if needed (race-safe)."""
    found = account_id_for(connection, scope, owner_id)
    if found is not None:
        return found
    stmt = insert_factory(accounts).values(
        id=new_id(),
        owner_scope=str(scope),
        owner_id=owner_id,
        balance_units=0,
        reserved_units=0,
        created_at=now,
        updated_at=now,
    )
    connection.execute(stmt.on_conflict_do_nothing(index_elements=["owner_scope", "owner_id"]))
    found = account_id_for(connection, scope, owner_id)
    if found is None:
        raise LedgerInvariantViolation(f"could not create account {scope}/{owner_id}")
    return found


def account_id_for(connection: Connection, scope: OwnerScope, owner_id: str) -> str | None:
    return connection.execute(
        select(accounts.c.id).where(and_(accounts.c.owner_scope == str(scope), accounts.c.owner_id == owner_id))
    ).scalar_one_or_none()


def get_account(connection: Connection, account_id: str, *, for_update: bool = False) -> Any:
    stmt = select(accounts).where(accounts.c.id == account_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = connection.execute(stmt).first()
    if row is None:
        raise NotFound("Wallet was not found.", details={"wallet_id": account_id})
    return row


def change_reserved(connection: Connection, account_id: str, delta: int, *, now: datetime) -> None:
    """Reserve (delta > 0) or release (delta < 0) funds of a constrained wallet."""
    reserved = accounts.c.reserved_units
    # Reserving needs that much available; releasing may not take more than is reserved.
    guard = accounts.c.balance_units - reserved >= delta if delta > 0 else reserved + delta >= 0
    stmt = update(accounts).where(accounts.c.id == account_id, guard)
    result = connection.execute(stmt.values(reserved_units=reserved + delta, updated_at=now))
    if result.rowcount != 1:
        if delta > 0:
            raise InsufficientBalance("Wallet does not have enough available balance to reserve.")
        raise LedgerInvariantViolation(f"releasing more than is reserved on {account_id}")


def recent_postings(connection: Connection, account_id: str, *, limit: int = 20) -> Iterable[Any]:
    return connection.execute(
        select(
            ledger_postings.c.id,
            ledger_postings.c.transaction_id,
            ledger_postings.c.amount_units,
            ledger_postings.c.reason,
            ledger_postings.c.created_at,
        )
        .where(ledger_postings.c.account_id == account_id)
        .order_by(ledger_postings.c.id.desc())
        .limit(limit)
    ).all()


def posting_sum(connection: Connection, account_id: str) -> int:
    total = connection.execute(
        select(func.coalesce(func.sum(ledger_postings.c.amount_units), 0)).where(
            ledger_postings.c.account_id == account_id
        )
    ).scalar_one()
    return int(total)
