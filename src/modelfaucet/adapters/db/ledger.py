"""The ledger repository: the only code that inserts postings or moves a balance.

:meth:`SqlLedger.post` (one transaction) and :meth:`SqlLedger.post_many` (a usage batch)
share :meth:`SqlLedger._move_balances`, the one balance mover:

- each touched account moves once, by its net change;
- wallets the caller already locked and decided (``decided``: the usage engine's end-user
  wallets) move first, in one statement (``UPDATE … FROM unnest`` on PostgreSQL, one
  executemany on SQLite); the guard stays in the statement, so a miss is a bug and fails
  loud;
- every other account moves after them in id order (so concurrent posters take row locks
  in one order and never deadlock): credits in one set UPDATE on PostgreSQL, the rest one
  by one. For the usage engine (``decided`` / ``moved``) they move after the rows are
  inserted, so the hot platform, provider-cost and developer rows are locked last, just
  before the caller commits.
- :meth:`SqlLedger.debit_wallets` (the usage engine's common case) locks and debits a
  batch's wallets in one all-or-nothing statement; ``post_many(moved=…)`` then checks the
  postings match what it moved. A debit of a
  constrained wallet carries the guard ``balance − reserved + delta ≥ 0`` in its UPDATE, so
  concurrent debits can never overdraw it; a miss is :class:`InsufficientBalance`;
- no balance leaves ±``MAX_BALANCE_UNITS`` (a refusal, :func:`balance_limit_refusal`). Every
  guard compares the stored balance with a bound computed in Python, never ``balance +
  delta`` itself, so the guard cannot overflow BIGINT either.

Then the transaction and posting rows are inserted (COPY on PostgreSQL, see :mod:`.bulk`).
All of it runs in the caller's unit of work: if anything fails, nothing is kept. The
PostgreSQL set statements (``*_PG``) run on the bare driver (:func:`.bulk.driver_rows`):
they run once per batch or credit, and SQLAlchemy's per-statement work cost more client CPU
than the driver's.

:meth:`SqlLedger.post_at_commit` (a Stripe top-up's credit) inserts the rows at once and
leaves the balances to the unit of work's commit: :meth:`SqlLedger.move_at_commit` moves
them through the same mover as the last statements before ``COMMIT`` (one guarded statement
on PostgreSQL, wallets locked first, then the others in id order), so the hot wallet and
Stripe clearing rows are held only for the commit itself. A usage batch's ``post_many``
leaves its platform, provider-cost and developer credits to the same mover: they move after
the batch's usage rows, as the statement just before ``COMMIT``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select, tuple_, update

from ...domain.identity import new_id
from ...domain.ledger import (
    CONSTRAINED_SCOPES,
    MAX_BALANCE_UNITS,
    AccountState,
    OwnerScope,
    SystemAccount,
    Transaction,
)
from ...domain.money import format_usd
from ...domain.outcomes import InsufficientBalance, InvalidRequest, LedgerInvariantViolation, NotFound
from ...services.repositories import PostingLine
from ...services.signals import Moved, tally_moved
from .bulk import driver_rowcount, driver_rows, insert_many, int_array, text_array, upsert_factory
from .tables import accounts, ledger_postings, ledger_transactions

_CONSTRAINED = sorted(str(scope) for scope in CONSTRAINED_SCOPES)
_CONSTRAINED_ARRAY = text_array(_CONSTRAINED)  # the same, as _MOVE_MANY_PG's array parameter
WALLET_NOT_FOUND = "Wallet was not found."

_MOVE_DECIDED_PG = (
    "UPDATE accounts AS a SET balance_units = a.balance_units + m.delta, updated_at = %(now)s "
    "FROM unnest(CAST(%(ids)s AS VARCHAR[]), CAST(%(deltas)s AS BIGINT[])) AS m(id, delta) "
    "WHERE a.id = m.id AND a.balance_units - a.reserved_units + m.delta >= 0"
)
# Reserved amounts of many wallets, each by its net change, guarded like change_reserved:
# a net reservation needs that much available, a net release never takes reserved below 0.
_RESERVE_MANY_PG = (
    "UPDATE accounts AS a SET reserved_units = a.reserved_units + m.delta, updated_at = %(now)s "
    "FROM unnest(CAST(%(ids)s AS VARCHAR[]), CAST(%(deltas)s AS BIGINT[])) AS m(id, delta) "
    "WHERE a.id = m.id AND ((m.delta > 0 AND a.balance_units - a.reserved_units >= m.delta) "
    "OR (m.delta < 0 AND a.reserved_units + m.delta >= 0))"
)
_RESERVE_ONE = (
    update(accounts)
    .where(
        accounts.c.id == bindparam("move_id"),
        or_(
            and_(
                bindparam("move_delta") > 0,
                accounts.c.balance_units - accounts.c.reserved_units >= bindparam("move_delta"),
            ),
            and_(bindparam("move_delta") < 0, accounts.c.reserved_units + bindparam("move_delta") >= 0),
        ),
    )
    .values(reserved_units=accounts.c.reserved_units + bindparam("move_delta"), updated_at=bindparam("move_now"))
)
_MOVE_DECIDED_ONE = (
    update(accounts)
    .where(
        accounts.c.id == bindparam("move_id"),
        accounts.c.balance_units - accounts.c.reserved_units + bindparam("move_delta") >= 0,
    )
    .values(balance_units=accounts.c.balance_units + bindparam("move_delta"), updated_at=bindparam("move_now"))
)

# Row locks here are FOR NO KEY UPDATE (what the UPDATE takes anyway), never FOR UPDATE: a
# concurrent batch's postings check their foreign key with FOR KEY SHARE on the same rows,
# which FOR UPDATE would block — two posting connections would then deadlock.
# debit_wallets on PostgreSQL: one round trip. ``locked`` takes the row locks in id order
# (no deadlock with any other id-ordered locker) and reads the rows' latest versions, found
# by primary key (a filter on the scope there would scan every end user's wallet instead);
# ``verdict`` is true only if every wallet exists, has the scope, has nothing reserved and can pay; the
# UPDATE then moves all of them (its own guard re-checked on the locked rows) or none.
_TRANSACTION_COLUMNS = ("id", "reason", "reference_type", "reference_id", "created_at")
_POSTING_COLUMNS = ("transaction_id", "account_id", "amount_units", "reason", "created_at")

_DEBIT_ALL_OR_NOTHING_PG = (
    "WITH m AS (SELECT * FROM unnest(CAST(%(ids)s AS VARCHAR[]), CAST(%(deltas)s AS BIGINT[])) AS m(id, delta)), "
    "locked AS (SELECT a.id, a.owner_scope, a.balance_units, a.reserved_units FROM m "
    "JOIN accounts a ON a.id = m.id ORDER BY a.id FOR NO KEY UPDATE OF a), "
    "verdict AS (SELECT count(*) = %(n)s AND coalesce(bool_and(l.owner_scope = %(scope)s AND l.reserved_units = 0 "
    "AND l.balance_units + m.delta >= 0), false) AS ok FROM locked l JOIN m ON m.id = l.id) "
    "UPDATE accounts AS a SET balance_units = a.balance_units + m.delta, updated_at = %(now)s FROM m, verdict "
    "WHERE verdict.ok AND a.id = m.id AND a.balance_units - a.reserved_units + m.delta >= 0 "
    "RETURNING a.id, a.owner_id, a.balance_units, a.reserved_units"
)
# Credits of unconstrained or credit-only rows (the usage batch's platform, provider-cost and
# developer accounts) in one statement, locked in id order, each under the ±MAX bound.
_CREDIT_MANY_PG = (
    "WITH m AS (SELECT * FROM unnest(CAST(%(ids)s AS VARCHAR[]), CAST(%(deltas)s AS BIGINT[])) AS m(id, delta)), "
    "locked AS (SELECT a.id FROM accounts a JOIN m ON a.id = m.id ORDER BY a.id FOR NO KEY UPDATE OF a) "
    "UPDATE accounts AS a SET balance_units = a.balance_units + m.delta, updated_at = %(now)s FROM m, locked "
    "WHERE a.id = m.id AND locked.id = a.id AND a.balance_units <= %(max)s - m.delta RETURNING a.id"
)

# post_at_commit's rows on PostgreSQL: the transaction and its postings in one statement
# (the postings' foreign key is checked at the end of the statement, when the transaction
# row is there). A top-up credit's CPU is mostly spent per statement (issue 16, B7).
_INSERT_TRANSACTION_PG = (
    "WITH t AS (INSERT INTO ledger_transactions (id, reason, reference_type, reference_id, created_at) "
    "VALUES (%(tid)s, %(reason)s, %(reference_type)s, %(reference_id)s, %(now)s)) "
    "INSERT INTO ledger_postings (transaction_id, account_id, amount_units, reason, created_at) "
    "SELECT %(tid)s, p.account_id, p.amount_units, p.reason, %(now)s "
    "FROM unnest(CAST(%(accounts)s AS VARCHAR[]), CAST(%(amounts)s AS BIGINT[]), CAST(%(reasons)s AS VARCHAR[])) "
    "WITH ORDINALITY AS p(account_id, amount_units, reason, n) ORDER BY p.n"
)

# Any mix of credits and debits in one statement (``post_at_commit``'s balances): locked
# wallets first (the order every wallet-then-clearing poster takes), then the others, each in
# id order; each row guarded like _move_one. CASE keeps every bound computation in BIGINT
# range (|delta| <= MAX is checked first).
_MOVE_MANY_PG = (
    "WITH m AS (SELECT * FROM unnest(CAST(%(ids)s AS VARCHAR[]), CAST(%(deltas)s AS BIGINT[])) AS m(id, delta)), "
    "locked AS (SELECT a.id FROM accounts a JOIN m ON a.id = m.id "
    "ORDER BY a.owner_scope = ANY(CAST(%(constrained)s AS VARCHAR[])) DESC, a.id FOR NO KEY UPDATE OF a) "
    "UPDATE accounts AS a SET balance_units = a.balance_units + m.delta, updated_at = %(now)s FROM m, locked "
    "WHERE a.id = m.id AND locked.id = a.id AND CASE "
    "WHEN m.delta > 0 THEN a.balance_units <= %(max)s - m.delta "
    "WHEN a.owner_scope = ANY(CAST(%(constrained)s AS VARCHAR[])) THEN a.balance_units - a.reserved_units >= -m.delta "
    "ELSE a.balance_units >= %(min)s - m.delta END RETURNING a.id"
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


class SystemAccountIds:
    """System account owner id → account id, per process and database (the
    :class:`~.database.Database` holds one). Only ids of committed rows are remembered: an
    account created by a unit of work that then rolls back is never here. Accounts are never
    deleted, and system accounts are a handful (:class:`SystemAccount`), so it never grows
    past that."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}

    def get(self, owner_id: str) -> str | None:
        return self._ids.get(owner_id)

    def remember(self, owner_id: str, account_id: str) -> None:
        self._ids[owner_id] = account_id


class SqlLedger:
    """Accounts and postings inside one unit of work's connection."""

    def __init__(self, connection: Connection, now: datetime, system_ids: SystemAccountIds | None = None) -> None:
        self.connection = connection
        self.now = now
        self.moved: dict[str, Moved] = {}  # what this unit of work posted, told once it commits
        self.at_commit: dict[str, int] = {}  # net changes left for the commit, not moved yet
        self.system_ids = system_ids
        self._learned: dict[str, str] = {}  # system account ids read here, remembered at commit

    # -- reads ------------------------------------------------------------------------

    def get(self, account_id: str, *, for_update: bool = False) -> AccountState | None:
        self.move_at_commit()  # a read sees what this unit of work posted
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
        self.move_at_commit()
        stmt = (
            select(accounts.c.id, accounts.c.owner_id, accounts.c.balance_units, accounts.c.reserved_units)
            .where(and_(accounts.c.owner_scope == scope.value, accounts.c.owner_id.in_(list(owner_ids))))
            .order_by(accounts.c.id)
        )
        if self.connection.dialect.name == "postgresql":
            # FOR NO KEY UPDATE, the lock an UPDATE of the balance takes anyway: it serialises
            # every locker of the wallet, yet lets another transaction's foreign-key check
            # (a posting that references the wallet) through instead of deadlocking with it.
            stmt = stmt.with_for_update(key_share=True)
        return [
            AccountState(row.id, scope, int(row.balance_units), int(row.reserved_units), row.owner_id)
            for row in self.connection.execute(stmt)
        ]

    def debit_wallets(self, scope: OwnerScope, debits: Mapping[str, int]) -> list[AccountState] | None:
        if not debits:
            return []
        if any(delta > 0 or delta < -MAX_BALANCE_UNITS for delta in debits.values()):
            raise LedgerInvariantViolation("debit_wallets only debits, within the balance bound")
        self.move_at_commit()
        ids = sorted(debits)
        if self.connection.dialect.name == "postgresql":
            params: Any = {
                "ids": text_array(ids),
                "deltas": int_array(debits[account_id] for account_id in ids),
                "scope": scope.value,
                "n": len(ids),
                "now": self.now,
            }
            rows = driver_rows(self.connection, _DEBIT_ALL_OR_NOTHING_PG, params)
            if not rows:
                return None
            if len(rows) != len(ids):
                raise LedgerInvariantViolation("a wallet moved under its own lock")
            # RETURNING a.id, a.owner_id, a.balance_units, a.reserved_units
            states = [AccountState(r[0], scope, int(r[2]), int(r[3]), r[1]) for r in rows]
            return sorted(states, key=lambda state: state.account_id)
        # SQLite: BEGIN IMMEDIATE already serialises writers; read, check, then move.
        stmt = select(accounts.c.id, accounts.c.owner_id, accounts.c.balance_units, accounts.c.reserved_units).where(
            accounts.c.id.in_(ids), accounts.c.owner_scope == scope.value
        )
        found = [
            AccountState(row.id, scope, int(row.balance_units), int(row.reserved_units), row.owner_id)
            for row in self.connection.execute(stmt.order_by(accounts.c.id))
        ]
        if len(found) != len(ids) or any(
            state.reserved_units or state.balance_units + debits[state.account_id] < 0 for state in found
        ):
            return None
        self._move_decided({account_id: delta for account_id, delta in debits.items() if delta})
        for state in found:
            state.balance_units += debits[state.account_id]
        return found

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

    def system_account(self, account: SystemAccount) -> str:
        """The id of a system account (created empty if missing, as :meth:`ensure`): from
        the per-database memory when a committed unit of work already read it, else read
        here and remembered only once this unit of work commits (:meth:`committed`)."""
        if self.system_ids is not None:
            known = self.system_ids.get(account.value)
            if known is not None:
                return known
        found = self.ensure(OwnerScope.SYSTEM, account.value)
        self._learned[account.value] = found
        return found

    def committed(self) -> None:
        """The unit of work committed: the system account ids it read are committed rows now."""
        if self.system_ids is not None and self._learned:
            for owner_id, account_id in self._learned.items():
                self.system_ids.remember(owner_id, account_id)
        self._learned.clear()

    def post(self, transaction: Transaction) -> str:
        return self.post_many([transaction])[0]

    def post_many(
        self,
        transactions: Sequence[Transaction],
        *,
        decided: Collection[str] = (),
        moved: Mapping[str, int] | None = None,
    ) -> list[str]:
        if not transactions:
            return []
        net: dict[str, int] = {}
        for transaction in transactions:
            for posting in transaction.postings:
                net[posting.account_id] = net.get(posting.account_id, 0) + posting.amount_units
        moved = moved or {}
        for account_id, delta in moved.items():
            if net.pop(account_id, 0) != delta:
                raise LedgerInvariantViolation(f"account {account_id} moved by other than its postings")
        items = [(new_id(), transaction) for transaction in transactions]
        if decided or moved:  # the usage engine: rows first, the hot accounts at the commit
            self._move_balances(net, decided=decided, others=False)
            self._insert_rows(items)
            self._leave_for_commit((account, delta) for account, delta in net.items() if account not in decided)
        else:
            self._move_balances(net, decided=decided)
            self._insert_rows(items)
        self.moved = tally_moved(self.moved, transactions)
        return [transaction_id for transaction_id, _ in items]

    def post_at_commit(self, transaction: Transaction) -> str:
        """Insert the transaction and its postings now; the balances move when the unit of
        work commits (:meth:`move_at_commit`), as its last statements."""
        transaction_id = new_id()
        if self.connection.dialect.name == "postgresql":
            postings = transaction.postings
            driver_rows(
                self.connection,
                _INSERT_TRANSACTION_PG,
                {
                    "tid": transaction_id,
                    "reason": transaction.reason,
                    "reference_type": transaction.reference_type,
                    "reference_id": transaction.reference_id,
                    "now": self.now,
                    "accounts": text_array(posting.account_id for posting in postings),
                    "amounts": int_array(posting.amount_units for posting in postings),
                    "reasons": text_array(posting.reason for posting in postings),
                },
            )
        else:
            self._insert_rows([(transaction_id, transaction)])
        self._leave_for_commit((posting.account_id, posting.amount_units) for posting in transaction.postings)
        self.moved = tally_moved(self.moved, [transaction])
        return transaction_id

    def _leave_for_commit(self, changes: Iterable[tuple[str, int]]) -> None:
        for account_id, delta in changes:
            self.at_commit[account_id] = self.at_commit.get(account_id, 0) + delta

    def move_at_commit(self) -> None:
        """Move the balances :meth:`post_at_commit` left, each account once by its net change,
        under the usual guards (a refusal raises; the caller's unit of work keeps nothing).
        The unit of work calls this just before ``COMMIT``; a read of an account calls it first."""
        if self.at_commit:
            net, self.at_commit = self.at_commit, {}
            self._move_balances(net, decided=(), together=True)

    def change_reserved(self, account_id: str, delta_units: int) -> None:
        self.move_at_commit()
        reserved = accounts.c.reserved_units
        # Reserving needs that much available; releasing may not take more than is reserved.
        guard = accounts.c.balance_units - reserved >= delta_units if delta_units > 0 else reserved + delta_units >= 0
        stmt = update(accounts).where(accounts.c.id == account_id, guard)
        result = self.connection.execute(stmt.values(reserved_units=reserved + delta_units, updated_at=self.now))
        if result.rowcount != 1:
            if delta_units > 0:
                raise InsufficientBalance("Wallet does not have enough available balance to reserve.")
            raise LedgerInvariantViolation(f"releasing more than is reserved on {account_id}")

    def change_reserved_many(self, deltas: Mapping[str, int]) -> None:
        """Move the reserved amount of many wallets, each once by its net change, in one
        statement (the hold engine's batch). The caller locked and decided the wallets; the
        guards stay in the statement, so a miss is a bug and fails loud."""
        moves = {account_id: delta for account_id, delta in deltas.items() if delta}
        if not moves:
            return
        self.move_at_commit()
        ids = sorted(moves)
        if self.connection.dialect.name == "postgresql":
            params: Any = {"now": self.now, "ids": text_array(ids), "deltas": int_array(moves[i] for i in ids)}
            moved = driver_rowcount(self.connection, _RESERVE_MANY_PG, params)
        else:
            rows = [{"move_id": i, "move_delta": moves[i], "move_now": self.now} for i in ids]
            moved = self.connection.execute(_RESERVE_ONE, rows).rowcount
        if moved != len(ids):
            raise LedgerInvariantViolation("a decided wallet's reserved amount moved under the hold engine")

    # -- the balance mover ------------------------------------------------------------

    def _move_balances(
        self,
        net: Mapping[str, int],
        *,
        decided: Collection[str],
        skip: Collection[str] = (),
        others: bool | None = None,
        together: bool = False,
    ) -> None:
        """Move the ``decided`` wallets (``others`` False or None) and then every other
        account of ``net`` except ``skip`` (``others`` True or None); ``together``: those in
        one statement on PostgreSQL (wallets locked first, then the others, in id order)."""
        for account_id, delta in net.items():
            if abs(delta) > MAX_BALANCE_UNITS:
                raise balance_limit_refusal(account_id)
        decided_debits = {account_id: net[account_id] for account_id in decided if net.get(account_id)}
        if any(delta > 0 for delta in decided_debits.values()):
            raise LedgerInvariantViolation("a decided wallet may only be debited")
        if others is not True:
            self._move_decided(decided_debits)
        if others is False:
            return
        rest = {
            account_id: delta
            for account_id, delta in net.items()
            if delta and account_id not in decided_debits and account_id not in skip
        }
        if together and len(rest) > 1 and self.connection.dialect.name == "postgresql":
            self._move_many(rest)
            return
        credits = {account_id: delta for account_id, delta in rest.items() if delta > 0}
        if len(credits) > 1 and self.connection.dialect.name == "postgresql":
            self._credit_many(credits)
            rest = {account_id: delta for account_id, delta in rest.items() if delta < 0}
        for account_id in sorted(rest):
            self._move_one(account_id, rest[account_id])

    def _credit_many(self, credits: Mapping[str, int]) -> None:
        ids = sorted(credits)
        params: Any = {
            "ids": text_array(ids),
            "deltas": int_array(credits[i] for i in ids),
            "now": self.now,
            "max": MAX_BALANCE_UNITS,
        }
        done = {row[0] for row in driver_rows(self.connection, _CREDIT_MANY_PG, params)}
        for account_id in ids:
            if account_id not in done:
                if self.get(account_id) is None:
                    raise LedgerInvariantViolation(f"posting to unknown account {account_id}")
                raise balance_limit_refusal(account_id)

    def _move_many(self, moves: Mapping[str, int]) -> None:
        ids = sorted(moves)
        params: Any = {
            "ids": text_array(ids),
            "deltas": int_array(moves[i] for i in ids),
            "constrained": _CONSTRAINED_ARRAY,
            "now": self.now,
            "max": MAX_BALANCE_UNITS,
            "min": -MAX_BALANCE_UNITS,
        }
        done = {row[0] for row in driver_rows(self.connection, _MOVE_MANY_PG, params)}
        for account_id in ids:
            if account_id not in done:
                raise self._refusal(account_id, moves[account_id])

    def _move_decided(self, debits: Mapping[str, int]) -> None:
        if not debits:
            return
        ids = sorted(debits)
        if self.connection.dialect.name == "postgresql":
            params: Any = {"now": self.now, "ids": text_array(ids), "deltas": int_array(debits[i] for i in ids)}
            moved = driver_rowcount(self.connection, _MOVE_DECIDED_PG, params)
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
        raise self._refusal(account_id, delta)

    def _refusal(self, account_id: str, delta: int) -> Exception:
        """Why a guarded move of ``account_id`` by ``delta`` matched no row."""
        found = self.get(account_id)
        if found is None:
            raise LedgerInvariantViolation(f"posting to unknown account {account_id}")
        if not found.constrained or delta > 0:
            return balance_limit_refusal(account_id)
        return InsufficientBalance(
            "Wallet does not have enough balance for this debit.",
            details={
                "wallet_id": account_id,
                "available_usd": format_usd(found.available_units),
                "requested_usd": format_usd(-delta),
            },
        )

    def _insert_rows(self, items: Sequence[tuple[str, Transaction]]) -> None:
        now = self.now
        insert_many(
            self.connection,
            ledger_transactions,
            _TRANSACTION_COLUMNS,
            [(tid, txn.reason, txn.reference_type, txn.reference_id, now) for tid, txn in items],
        )
        insert_many(
            self.connection,
            ledger_postings,
            _POSTING_COLUMNS,
            [
                (tid, posting.account_id, posting.amount_units, posting.reason, now)
                for tid, txn in items
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
