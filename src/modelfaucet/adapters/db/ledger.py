"""The ledger repository: the only code that inserts postings or moves a balance.

:meth:`SqlLedger.post` (one transaction) and :meth:`SqlLedger.post_many` (a usage batch)
share :meth:`SqlLedger._move_balances`, the one balance mover:

- each touched account moves once, by its net change;
- wallets the caller already locked and decided (``decided``: the usage engine's end-user
  wallets) move first, in one statement (``UPDATE … FROM unnest`` on PostgreSQL, one
  executemany on SQLite); the guard stays in the statement, so a miss is a bug and fails
  loud;
- every other account moves after them, one by one in id order (so concurrent posters
  take row locks in one order and never deadlock; the hot platform, provider-cost and
  developer rows are touched last, just before the caller commits). A debit of a
  constrained wallet carries the guard ``balance − reserved + delta ≥ 0`` in its UPDATE, so
  concurrent debits can never overdraw it; a miss is :class:`InsufficientBalance`;
- no balance leaves ±``MAX_BALANCE_UNITS`` (a refusal, :func:`balance_limit_refusal`). Every
  guard compares the stored balance with a bound computed in Python, never ``balance +
  delta`` itself, so the guard cannot overflow BIGINT either.

Then the transaction and posting rows are inserted (COPY on PostgreSQL for many rows, see
:mod:`.bulk`). All of it runs in the caller's unit of work: if anything fails, nothing is
kept.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, and_, bindparam, func, or_, select, text, tuple_, update

from ...domain.identity import new_id
from ...domain.ledger import CONSTRAINED_SCOPES, MAX_BALANCE_UNITS, AccountState, OwnerScope, Transaction
from ...domain.money import format_usd
from ...domain.outcomes import InsufficientBalance, InvalidRequest, LedgerInvariantViolation, NotFound
from ...services.repositories import PostingLine
from ...services.signals import Moved, tally_moved
from .bulk import insert_many, upsert_factory
from .tables import accounts, ledger_postings, ledger_transactions

_CONSTRAINED = sorted(str(scope) for scope in CONSTRAINED_SCOPES)
WALLET_NOT_FOUND = "Wallet was not found."

_MOVE_DECIDED_PG = text(
    "UPDATE accounts AS a SET balance_units = a.balance_units + m.delta, updated_at = :now "
    "FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:deltas AS BIGINT[])) AS m(id, delta) "
    "WHERE a.id = m.id AND a.balance_units - a.reserved_units + m.delta >= 0"
).bindparams(bindparam("now", type_=DateTime(timezone=True)))
_MOVE_DECIDED_ONE = (
    update(accounts)
    .where(
        accounts.c.id == bindparam("move_id"),
        accounts.c.balance_units - accounts.c.reserved_units + bindparam("move_delta") >= 0,
    )
    .values(balance_units=accounts.c.balance_units + bindparam("move_delta"), updated_at=bindparam("move_now"))
)


def account_state(row: Any) -> AccountState:
    return AccountState(
        account_id=row.id,
        owner_scope=OwnerScope(row.owner_scope),
        balance_units=int(row.balance_units),
        reserved_units=int(row.reserved_units),
        owner_id=row.owner_id,
    )


def balance_limit_refusal(account_id: str) -> InvalidRequest:
    return InvalidRequest(
        f"This would take an account's balance past the supported limit of ±{format_usd(MAX_BALANCE_UNITS)} USD;"
        " nothing was written.",
        details={"account_id": account_id, "limit_usd": format_usd(MAX_BALANCE_UNITS)},
    )


class SqlLedger:
    """Accounts and postings inside one unit of work's connection."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now
        self.moved: dict[str, Moved] = {}  # what this unit of work posted, told once it commits

    # -- reads ------------------------------------------------------------------------

    def get(self, account_id: str, *, for_update: bool = False) -> AccountState | None:
        stmt = select(accounts).where(accounts.c.id == account_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = self.connection.execute(stmt).first()
        return None if row is None else account_state(row)

    def require(self, account_id: str, *, for_update: bool = False) -> AccountState:
        found = self.get(account_id, for_update=for_update)
        if found is None:
            raise NotFound(WALLET_NOT_FOUND, details={"wallet_id": account_id})
        return found

    def id_for(self, scope: OwnerScope, owner_id: str) -> str | None:
        return self.connection.execute(
            select(accounts.c.id).where(and_(accounts.c.owner_scope == str(scope), accounts.c.owner_id == owner_id))
        ).scalar_one_or_none()

    def ids_for(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(scope, owner) → id for the accounts among ``keys`` that exist."""
        if not keys:
            return {}
        stmt = select(accounts.c.id, accounts.c.owner_scope, accounts.c.owner_id).where(
            tuple_(accounts.c.owner_scope, accounts.c.owner_id).in_(list(keys))
        )
        return {(row.owner_scope, row.owner_id): row.id for row in self.connection.execute(stmt)}

    def lock_wallets(self, scope: OwnerScope, owner_ids: Sequence[str]) -> list[AccountState]:
        """The (scope, owner) wallets of ``owner_ids``, locked in id order on PostgreSQL
        (SQLite's ``BEGIN IMMEDIATE`` already serialises writers)."""
        if not owner_ids:
            return []
        stmt = (
            select(accounts.c.id, accounts.c.owner_id, accounts.c.balance_units, accounts.c.reserved_units)
            .where(and_(accounts.c.owner_scope == scope.value, accounts.c.owner_id.in_(list(owner_ids))))
            .order_by(accounts.c.id)
        )
        if self.connection.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return [
            AccountState(row.id, scope, int(row.balance_units), int(row.reserved_units), row.owner_id)
            for row in self.connection.execute(stmt)
        ]

    def recent_postings(self, account_id: str, *, limit: int = 20, before_id: int | None = None) -> list[PostingLine]:
        stmt = select(
            ledger_postings.c.id,
            ledger_postings.c.transaction_id,
            ledger_postings.c.amount_units,
            ledger_postings.c.reason,
            ledger_postings.c.created_at,
        ).where(ledger_postings.c.account_id == account_id)
        if before_id is not None:
            stmt = stmt.where(ledger_postings.c.id < before_id)
        rows = self.connection.execute(stmt.order_by(ledger_postings.c.id.desc()).limit(limit)).all()
        return [
            PostingLine(int(row.id), row.transaction_id, int(row.amount_units), row.reason, row.created_at)
            for row in rows
        ]

    def posting_sum(self, account_id: str) -> int:
        total = self.connection.execute(
            select(func.coalesce(func.sum(ledger_postings.c.amount_units), 0)).where(
                ledger_postings.c.account_id == account_id
            )
        ).scalar_one()
        return int(total)

    # -- writes -----------------------------------------------------------------------

    def ensure(self, scope: OwnerScope, owner_id: str) -> str:
        found = self.id_for(scope, owner_id)
        if found is not None:
            return found
        stmt = upsert_factory(self.connection)(accounts).values(
            id=new_id(),
            owner_scope=str(scope),
            owner_id=owner_id,
            balance_units=0,
            reserved_units=0,
            created_at=self.now,
            updated_at=self.now,
        )
        self.connection.execute(stmt.on_conflict_do_nothing(index_elements=["owner_scope", "owner_id"]))
        found = self.id_for(scope, owner_id)
        if found is None:
            raise LedgerInvariantViolation(f"could not create account {scope}/{owner_id}")
        return found

    def post(self, transaction: Transaction) -> str:
        return self.post_many([transaction])[0]

    def post_many(self, transactions: Sequence[Transaction], *, decided: Collection[str] = ()) -> list[str]:
        if not transactions:
            return []
        net: dict[str, int] = {}
        for transaction in transactions:
            for posting in transaction.postings:
                net[posting.account_id] = net.get(posting.account_id, 0) + posting.amount_units
        self._move_balances(net, decided=decided)
        items = [(new_id(), transaction) for transaction in transactions]
        self._insert_rows(items)
        self.moved = tally_moved(self.moved, transactions)
        return [transaction_id for transaction_id, _ in items]

    def change_reserved(self, account_id: str, delta_units: int) -> None:
        reserved = accounts.c.reserved_units
        # Reserving needs that much available; releasing may not take more than is reserved.
        guard = accounts.c.balance_units - reserved >= delta_units if delta_units > 0 else reserved + delta_units >= 0
        stmt = update(accounts).where(accounts.c.id == account_id, guard)
        result = self.connection.execute(stmt.values(reserved_units=reserved + delta_units, updated_at=self.now))
        if result.rowcount != 1:
            if delta_units > 0:
                raise InsufficientBalance("Wallet does not have enough available balance to reserve.")
            raise LedgerInvariantViolation(f"releasing more than is reserved on {account_id}")

    # -- the balance mover ------------------------------------------------------------

    def _move_balances(self, net: Mapping[str, int], *, decided: Collection[str]) -> None:
        for account_id, delta in net.items():
            if abs(delta) > MAX_BALANCE_UNITS:
                raise balance_limit_refusal(account_id)
        decided_debits = {account_id: net[account_id] for account_id in decided if net.get(account_id)}
        if any(delta > 0 for delta in decided_debits.values()):
            raise LedgerInvariantViolation("a decided wallet may only be debited")
        self._move_decided(decided_debits)
        for account_id in sorted(net):
            delta = net[account_id]
            if delta and account_id not in decided_debits:
                self._move_one(account_id, delta)

    def _move_decided(self, debits: Mapping[str, int]) -> None:
        if not debits:
            return
        ids = sorted(debits)
        if self.connection.dialect.name == "postgresql":
            params: Any = {"now": self.now, "ids": ids, "deltas": [debits[i] for i in ids]}
            moved = self.connection.execute(_MOVE_DECIDED_PG, params).rowcount
        else:
            rows = [{"move_id": i, "move_delta": debits[i], "move_now": self.now} for i in ids]
            moved = self.connection.execute(_MOVE_DECIDED_ONE, rows).rowcount
        if moved != len(ids):
            raise LedgerInvariantViolation("a decided wallet's balance moved under the poster")

    def _move_one(self, account_id: str, delta: int) -> None:
        balance = accounts.c.balance_units
        stmt = update(accounts).where(accounts.c.id == account_id)
        if delta > 0:
            stmt = stmt.where(balance <= MAX_BALANCE_UNITS - delta)
        else:
            stmt = stmt.where(
                or_(
                    and_(accounts.c.owner_scope.not_in(_CONSTRAINED), balance >= -MAX_BALANCE_UNITS - delta),
                    and_(accounts.c.owner_scope.in_(_CONSTRAINED), balance - accounts.c.reserved_units >= -delta),
                )
            )
        result = self.connection.execute(stmt.values(balance_units=balance + delta, updated_at=self.now))
        if result.rowcount == 1:
            return
        found = self.get(account_id)
        if found is None:
            raise LedgerInvariantViolation(f"posting to unknown account {account_id}")
        if not found.constrained or delta > 0:
            raise balance_limit_refusal(account_id)
        raise InsufficientBalance(
            "Wallet does not have enough balance for this debit.",
            details={
                "wallet_id": account_id,
                "available_usd": format_usd(found.available_units),
                "requested_usd": format_usd(-delta),
            },
        )

    def _insert_rows(self, items: Sequence[tuple[str, Transaction]]) -> None:
        insert_many(
            self.connection,
            ledger_transactions,
            [
                {
                    "id": transaction_id,
                    "reason": txn.reason,
                    "reference_type": txn.reference_type,
                    "reference_id": txn.reference_id,
                    "created_at": self.now,
                }
                for transaction_id, txn in items
            ],
        )
        insert_many(
            self.connection,
            ledger_postings,
            [
                {
                    "transaction_id": transaction_id,
                    "account_id": posting.account_id,
                    "amount_units": posting.amount_units,
                    "reason": posting.reason,
                    "created_at": self.now,
                }
                for transaction_id, txn in items
                for posting in txn.postings
            ],
        )


# --- connection-level helpers for tests that set up or inspect rows directly; no service ---
# --- calls them (services speak only to the unit of work: tests/unit/test_architecture.py) ---


def post(connection: Connection, transaction: Transaction, *, now: datetime) -> str:
    return SqlLedger(connection, now).post(transaction)


def insert_rows(connection: Connection, items: Sequence[tuple[str, Transaction]], *, now: datetime) -> None:
    if items:
        SqlLedger(connection, now)._insert_rows(items)


def ensure_account(
    connection: Connection, _insert_factory: Any, scope: OwnerScope, owner_id: str, *, now: datetime
) -> str:
    return SqlLedger(connection, now).ensure(scope, owner_id)


def account_id_for(connection: Connection, scope: OwnerScope, owner_id: str) -> str | None:
    return SqlLedger(connection, datetime.min).id_for(scope, owner_id)


def get_account(connection: Connection, account_id: str, *, for_update: bool = False) -> Any:
    stmt = select(accounts).where(accounts.c.id == account_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = connection.execute(stmt).first()
    if row is None:
        raise NotFound(WALLET_NOT_FOUND, details={"wallet_id": account_id})
    return row


def change_reserved(connection: Connection, account_id: str, delta: int, *, now: datetime) -> None:
    SqlLedger(connection, now).change_reserved(account_id, delta)


def recent_postings(connection: Connection, account_id: str, *, limit: int = 20) -> list[PostingLine]:
    return SqlLedger(connection, datetime.min).recent_postings(account_id, limit=limit)


def posting_sum(connection: Connection, account_id: str) -> int:
    return SqlLedger(connection, datetime.min).posting_sum(account_id)
