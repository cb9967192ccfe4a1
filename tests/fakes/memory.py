"""An in-memory unit of work: the service tests of the money rules run without a database.

:class:`MemoryStore` is the committed state. Each :class:`MemoryUnitOfWork` works on a deep
copy of it and swaps the copy in on ``commit()``; leaving without ``commit()`` throws the
copy away, exactly like a rolled-back transaction. The fake repositories follow the same
protocols (``modelfaucet.services.repositories``) and the same rules as the SQL ones: the
balance guard comes from the pure :func:`~modelfaucet.domain.ledger.apply_net_changes`.
One thread at a time: concurrency is the SQL tests' business.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from modelfaucet.domain.audit import AuditEntry
from modelfaucet.domain.identity import new_id
from modelfaucet.domain.ledger import (
    MAX_BALANCE_UNITS,
    AccountState,
    OwnerScope,
    Posting,
    SystemAccount,
    Transaction,
    apply_net_changes,
)
from modelfaucet.domain.money import format_usd
from modelfaucet.domain.outcomes import InsufficientBalance, InvalidRequest, LedgerInvariantViolation, NotFound
from modelfaucet.services.repositories import AdjustmentRecord, PostingLine, StoredKey
from modelfaucet.services.signals import Moved, NoSignals, Signals, tally_moved
from tests.fakes.catalog import CatalogState, MemoryCatalog, MemorySessions
from tests.fakes.developers import DeveloperAccessState, MemoryDeveloperAccess, MemoryStatements
from tests.fakes.holds import HoldState, MemoryHolds
from tests.fakes.payouts import MemoryPayouts, PayoutBook
from tests.fakes.stripe import StripeState, stripe_repositories
from tests.fakes.usage import MemoryUsage, UsageState
from tests.fakes.web_sessions import MemoryWebSessions, WebSessionState


@dataclass
class MemoryState:
    accounts: dict[str, AccountState] = field(default_factory=dict)
    postings: list[tuple[int, str, str, int, str, datetime]] = field(default_factory=list)
    transactions: dict[str, Transaction] = field(default_factory=dict)
    audit: list[tuple[datetime, AuditEntry]] = field(default_factory=list)
    keys: dict[tuple[str, str], StoredKey] = field(default_factory=dict)
    adjustments: dict[str, AdjustmentRecord] = field(default_factory=dict)
    catalog: CatalogState = field(default_factory=CatalogState)
    stripe: StripeState = field(default_factory=StripeState)
    payouts: PayoutBook = field(default_factory=PayoutBook)
    usage: UsageState = field(default_factory=UsageState)
    holds: HoldState = field(default_factory=HoldState)

    developer_access: DeveloperAccessState = field(default_factory=DeveloperAccessState)
    web: WebSessionState = field(default_factory=WebSessionState)

    def __post_init__(self) -> None:
        # One table of end users, as in the database: the usage fake reads what the catalog writes.
        self.usage.end_users = self.catalog.end_users


class MemoryStore:
    """The committed books, and a factory of units of work over them."""

    def __init__(self, clock: Callable[[], datetime] | None = None, signals: Signals | None = None) -> None:
        self.state = MemoryState()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.commits = 0
        self.signals: Signals = signals or NoSignals()

    def __call__(
        self, *, read_only: bool = False, snapshot: bool = False, autocommit: bool = False
    ) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self, read_only=read_only or snapshot)

    def balance_of(self, account_id: str) -> int:
        return self.state.accounts[account_id].balance_units

    def open_account(self, scope: OwnerScope, owner_id: str, balance_units: int = 0) -> str:
        """Give an account an opening balance against a system account (a seed)."""
        with self() as uow:
            account_id = uow.ledger.ensure(scope, owner_id)
            if balance_units:
                equity = uow.ledger.ensure(OwnerScope.SYSTEM, "seed_equity")
                uow.ledger.post(
                    Transaction.of(
                        "seed_opening_balance",
                        [
                            Posting(account_id, balance_units, "seed_opening_balance"),
                            Posting(equity, -balance_units, "seed_opening_balance"),
                        ],
                    )
                )
            uow.commit()
        return account_id


class MemoryLedger:
    def __init__(self, state: MemoryState, now: datetime) -> None:
        self.state = state
        self.now = now
        self.moved: dict[str, Moved] = {}

    def get(self, account_id: str, *, for_update: bool = False) -> AccountState | None:
        found = self.state.accounts.get(account_id)
        return None if found is None else replace(found)

    def require(self, account_id: str, *, for_update: bool = False) -> AccountState:
        found = self.get(account_id)
        if found is None:
            raise NotFound("Wallet was not found.", details={"wallet_id": account_id})
        return found

    def id_for(self, scope: OwnerScope, owner_id: str) -> str | None:
        for account in self.state.accounts.values():
            if account.owner_scope is scope and account.owner_id == owner_id:
                return account.account_id
        return None

    def ids_for(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        wanted = set(keys)
        found = {(str(a.owner_scope), a.owner_id): a.account_id for a in self.state.accounts.values()}
        return {key: account_id for key, account_id in found.items() if key in wanted}

    def lock_wallets(self, scope: OwnerScope, owner_ids: Sequence[str]) -> list[AccountState]:
        wanted = set(owner_ids)
        found = [replace(a) for a in self.state.accounts.values() if a.owner_scope is scope and a.owner_id in wanted]
        return sorted(found, key=lambda account: account.account_id)

    def debit_wallets(self, scope: OwnerScope, debits: Mapping[str, int]) -> list[AccountState] | None:
        found = sorted(
            (replace(a) for a in self.state.accounts.values() if a.account_id in debits and a.owner_scope is scope),
            key=lambda account: account.account_id,
        )
        if len(found) != len(debits) or any(
            a.reserved_units or a.balance_units + debits[a.account_id] < 0 for a in found
        ):
            return None
        for account in found:
            account.balance_units += debits[account.account_id]
            self.state.accounts[account.account_id].balance_units = account.balance_units
        return found

    def ensure(self, scope: OwnerScope, owner_id: str) -> str:
        found = self.id_for(scope, owner_id)
        if found is not None:
            return found
        account_id = new_id()
        self.state.accounts[account_id] = AccountState(account_id, scope, 0, 0, owner_id)
        return account_id

    def system_account(self, account: SystemAccount) -> str:
        return self.ensure(OwnerScope.SYSTEM, account.value)

    def post(self, transaction: Transaction) -> str:
        return self.post_many([transaction])[0]

    def post_at_commit(self, transaction: Transaction) -> str:
        return self.post(transaction)  # no row locks in memory: nothing to gain by waiting

    def post_many(
        self,
        transactions: Sequence[Transaction],
        *,
        decided: Collection[str] = (),
        moved: Mapping[str, int] | None = None,
    ) -> list[str]:
        net: dict[str, int] = {}
        for transaction in transactions:
            for posting in transaction.postings:
                net[posting.account_id] = net.get(posting.account_id, 0) + posting.amount_units
        for account_id, delta in (moved or {}).items():
            if net.pop(account_id, 0) != delta:
                raise LedgerInvariantViolation(f"account {account_id} moved by other than its postings")
        check = apply_net_changes(self.state.accounts, net)
        if not check.ok:
            short = self.state.accounts[check.short_account_id or ""]
            if short.account_id in decided:
                raise LedgerInvariantViolation("a decided wallet's balance moved under the poster")
            raise InsufficientBalance(
                "Wallet does not have enough balance for this debit.",
                details={"wallet_id": short.account_id, "available_usd": format_usd(short.available_units)},
            )
        for account_id, balance in check.new_balances.items():
            if abs(balance) > MAX_BALANCE_UNITS:
                raise InvalidRequest("past the supported balance limit", details={"account_id": account_id})
        for account_id, balance in check.new_balances.items():
            self.state.accounts[account_id].balance_units = balance
        ids = []
        for transaction in transactions:
            transaction_id = new_id()
            self.state.transactions[transaction_id] = transaction
            for posting in transaction.postings:
                self.state.postings.append(
                    (
                        len(self.state.postings) + 1,
                        transaction_id,
                        posting.account_id,
                        posting.amount_units,
                        posting.reason,
                        self.now,
                    )
                )
            ids.append(transaction_id)
        self.moved = tally_moved(self.moved, transactions)
        return ids

    def change_reserved(self, account_id: str, delta_units: int) -> None:
        account = self.state.accounts[account_id]
        if delta_units > 0 and account.available_units < delta_units:
            raise InsufficientBalance("Wallet does not have enough available balance to reserve.")
        if account.reserved_units + delta_units < 0:
            raise LedgerInvariantViolation(f"releasing more than is reserved on {account_id}")
        account.reserved_units += delta_units

    def change_reserved_many(self, deltas: Mapping[str, int]) -> None:
        for account_id in sorted(deltas):
            delta = deltas[account_id]
            account = self.state.accounts[account_id]
            if (delta > 0 and account.available_units < delta) or account.reserved_units + delta < 0:
                raise LedgerInvariantViolation("a decided wallet's reserved amount moved under the hold engine")
        for account_id, delta in deltas.items():
            self.state.accounts[account_id].reserved_units += delta

    def recent_postings(self, account_id: str, *, limit: int = 20, before_id: int | None = None) -> list[PostingLine]:
        lines = [
            PostingLine(p[0], p[1], p[3], p[4], p[5])
            for p in self.state.postings
            if p[2] == account_id and (before_id is None or p[0] < before_id)
        ]
        return list(reversed(lines))[:limit]

    def posting_sum(self, account_id: str) -> int:
        return sum(p[3] for p in self.state.postings if p[2] == account_id)


class MemoryAuditLog:
    def __init__(self, state: MemoryState, now: datetime) -> None:
        self.state = state
        self.now = now
        self.pending: list[AuditEntry] = []

    def add(self, entry: AuditEntry) -> None:
        self.pending.append(entry)

    def chain_committed(self) -> int:
        return 0  # the in-memory log keeps no hash chain


class MemoryIdempotencyKeys:
    def __init__(self, state: MemoryState, now: datetime) -> None:
        self.state = state
        self.now = now

    def insert_claim(
        self, *, scope: str, key: str, request_hash: str, summary: Mapping[str, str], expires_at: datetime
    ) -> bool:
        if (scope, key) in self.state.keys:
            return False
        self.state.keys[(scope, key)] = StoredKey(
            scope, key, request_hash, dict(summary), "in_flight", None, self.now, expires_at
        )
        return True

    def get_for_update(self, scope: str, key: str) -> StoredKey | None:
        return self.state.keys.get((scope, key))

    def take_over(
        self, found: StoredKey, *, request_hash: str, summary: Mapping[str, str], expires_at: datetime
    ) -> bool:
        if self.state.keys.get((found.scope, found.key)) != found:
            return False
        self.state.keys[(found.scope, found.key)] = StoredKey(
            found.scope, found.key, request_hash, dict(summary), "in_flight", None, self.now, expires_at
        )
        return True

    def complete(
        self, *, scope: str, key: str, claimed_at: datetime, result: Mapping[str, Any], expires_at: datetime
    ) -> bool:
        found = self.state.keys.get((scope, key))
        if found is None or found.state != "in_flight" or found.created_at != claimed_at:
            return False
        self.state.keys[(scope, key)] = replace(found, state="done", result=dict(result), expires_at=expires_at)
        return True

    def release(self, *, scope: str, key: str, claimed_at: datetime) -> None:
        found = self.state.keys.get((scope, key))
        if found is not None and found.state == "in_flight" and found.created_at == claimed_at:
            del self.state.keys[(scope, key)]


class MemoryAdjustments:
    def __init__(self, state: MemoryState, now: datetime) -> None:
        self.state = state
        self.now = now

    def add(self, adjustment: AdjustmentRecord) -> None:
        if adjustment.id in self.state.adjustments:
            raise LedgerInvariantViolation("duplicate adjustment id")
        self.state.adjustments[adjustment.id] = adjustment


class _NotFaked:
    """A repository these fakes do not provide: touching it fails the test loudly."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attribute: str) -> Any:
        raise NotImplementedError(f"the in-memory unit of work has no {self.name} repository")


class MemoryUnitOfWork:
    """Implements :class:`modelfaucet.services.unit_of_work.UnitOfWork` in memory."""

    def __init__(self, store: MemoryStore, *, read_only: bool = False) -> None:
        self.store = store
        self.read_only = read_only
        self._working: MemoryState | None = None
        self._committed = False
        self._after_commit: list[Callable[[], None]] = []

    @property
    def dialect(self) -> str:
        return "memory"

    @property
    def signals(self) -> Signals:
        return self.store.signals

    def __enter__(self) -> MemoryUnitOfWork:
        self.now = self.store.clock()
        self._working = copy.deepcopy(self.store.state)
        state = self._working
        self.ledger = MemoryLedger(state, self.now)
        self.audit = MemoryAuditLog(state, self.now)
        self.idempotency = MemoryIdempotencyKeys(state, self.now)
        self.adjustments = MemoryAdjustments(state, self.now)
        self.catalog, self.sessions = MemoryCatalog(state.catalog, self.now), MemorySessions(state.catalog, self.now)
        self.payouts = MemoryPayouts(state, self.now)
        self.usage = MemoryUsage(
            state.usage,
            self.now,
            lambda: {
                a.owner_id: a.account_id
                for a in state.accounts.values()
                if a.owner_scope is OwnerScope.END_USER and a.owner_id is not None
            },
            lambda: {hold.request_id for hold in state.holds.holds.values()},
        )
        self.developers = MemoryDeveloperAccess(state.developer_access, state.catalog, self.now)
        self.statements = MemoryStatements(state.postings, state.transactions, self.now)
        self.holds = MemoryHolds(state.holds, self.now)
        self.web_sessions = MemoryWebSessions(state.web, self.now, self.developers)
        for name in (
            "provider_keys",
            "reports",
            "provenance",
            "reconciliation_runs",
        ):
            setattr(self, name, _NotFaked(name))
        self.topups, self.stripe_events = stripe_repositories(state.stripe, self.now)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._working = None

    def commit(self) -> None:
        if self._working is None or self._committed:
            raise LedgerInvariantViolation("commit outside an open unit of work, or twice")
        if self.read_only:
            raise LedgerInvariantViolation("a read-only unit of work cannot commit writes")
        self._working.audit.extend((self.now, entry) for entry in self.audit.pending)
        self.store.state = self._working
        self.store.commits += 1
        self._committed = True
        if self.ledger.moved:
            self.store.signals.money_moved(dict(self.ledger.moved))
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        if self._committed:
            raise LedgerInvariantViolation("after_commit on a unit of work that already committed")
        self._after_commit.append(callback)

    def rollback(self) -> None:
        self._working = None
        self._after_commit = []
