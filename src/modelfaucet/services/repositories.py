"""What services may ask of storage: one repository protocol per aggregate.

A repository is the only code that knows its tables. Services speak in domain values
(:class:`~modelfaucet.domain.ledger.AccountState`, :class:`~modelfaucet.domain.ledger.Transaction`,
the records below) and never see SQL, rows or connections. The SQL implementations live
in ``adapters/db/repositories``; in-memory ones for the service tests in ``tests/fakes``.

Every write takes its timestamp from the unit of work (``uow.now``), so one operation
stamps all its rows with one moment.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ..domain.audit import AuditEntry
from ..domain.ledger import AccountState, OwnerScope, Transaction
from ..domain.topups import StripeEventStatus, TopupStatus

# --- ledger: accounts, postings and the one balance mover -------------------------------


@dataclass(frozen=True, slots=True)
class PostingLine:
    """One posting as a statement shows it."""

    posting_id: int
    transaction_id: str
    amount_units: int
    reason: str
    created_at: datetime


class LedgerRepository(Protocol):
    """Accounts and postings. :meth:`post` and :meth:`post_many` are the only way a balance
    moves or a posting is written, and they share one balance mover."""

    def get(self, account_id: str, *, for_update: bool = False) -> AccountState | None: ...

    def require(self, account_id: str, *, for_update: bool = False) -> AccountState:
        """The account, or :class:`~modelfaucet.domain.outcomes.NotFound` ("Wallet was not found.")."""
        ...

    def id_for(self, scope: OwnerScope, owner_id: str) -> str | None: ...

    def ensure(self, scope: OwnerScope, owner_id: str) -> str:
        """The id of the (scope, owner) account, created empty if missing (race-safe)."""
        ...

    def post(self, transaction: Transaction) -> str:
        """Post one balanced transaction; return its id. A constrained wallet that cannot pay
        raises :class:`~modelfaucet.domain.outcomes.InsufficientBalance` (nothing kept)."""
        ...

    def post_many(self, transactions: Sequence[Transaction], *, decided: Collection[str] = ()) -> list[str]:
        """Post many transactions, each account's balance moving once by its net change.

        ``decided`` names wallets the caller locked and already checked (the usage engine):
        they move in one statement, and a miss there is a bug, not a refusal. The other
        accounts move last, one by one in id order, so concurrent posters never deadlock."""
        ...

    def change_reserved(self, account_id: str, delta_units: int) -> None:
        """Reserve (delta > 0, needs that much available) or release (delta < 0) funds."""
        ...

    def recent_postings(self, account_id: str, *, limit: int = 20) -> list[PostingLine]: ...

    def posting_sum(self, account_id: str) -> int: ...


# --- audit ------------------------------------------------------------------------------


class AuditLog(Protocol):
    """Collects the operation's audit entries; the unit of work writes them last."""

    def add(self, entry: AuditEntry) -> None: ...


# --- idempotency keys --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredKey:
    """An idempotency key as stored: who claimed it, for what request, and its result."""

    scope: str
    key: str
    request_hash: str
    request_summary: Mapping[str, str] | None
    state: str  # in_flight | done
    result: Mapping[str, Any] | None
    created_at: datetime
    expires_at: datetime


class IdempotencyRepository(Protocol):
    def insert_claim(
        self, *, scope: str, key: str, request_hash: str, summary: Mapping[str, str], expires_at: datetime
    ) -> bool:
        """Insert the key as ``in_flight`` unless it exists; True if this call inserted it."""
        ...

    def get_for_update(self, scope: str, key: str) -> StoredKey | None: ...

    def take_over(
        self,
        found: StoredKey,
        *,
        request_hash: str,
        summary: Mapping[str, str],
        expires_at: datetime,
    ) -> bool:
        """Claim an expired or abandoned key, only if it is still exactly ``found``."""
        ...

    def complete(
        self, *, scope: str, key: str, claimed_at: datetime, result: Mapping[str, Any], expires_at: datetime
    ) -> bool:
        """Store the result of the claim made at ``claimed_at``; False if the claim was taken over."""
        ...

    def release(self, *, scope: str, key: str, claimed_at: datetime) -> None: ...


# --- adjustments -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdjustmentRecord:
    id: str
    account_id: str
    kind: str
    direction: str
    amount_units: int
    status: str
    reason: str
    idempotency_key: str | None
    actor: str
    transaction_id: str


class AdjustmentRepository(Protocol):
    def add(self, adjustment: AdjustmentRecord) -> None: ...


# --- the other aggregates ----------------------------------------------------------------


class PayoutRepository(Protocol):
    """Payouts: the reviewable records of money owed to developers."""


@dataclass(frozen=True, slots=True)
class NewTopup:
    """A top-up to record as pending, for the Checkout session Stripe just opened."""

    id: str
    checkout_session_id: str
    account_id: str
    end_user_id: str
    amount_units: int
    amount_cents: int
    currency: str
    checkout_url: str


@dataclass(frozen=True, slots=True)
class TopupRecord:
    """A top-up as stored."""

    id: str
    checkout_session_id: str
    account_id: str
    end_user_id: str
    amount_units: int
    amount_cents: int
    currency: str
    status: TopupStatus
    checkout_url: str
    created_at: datetime
    credited_at: datetime | None = None
    transaction_id: str | None = None
    last_event_id: str | None = None


class TopupRepository(Protocol):
    """Stripe Checkout top-ups."""

    def add_pending(self, topup: NewTopup) -> bool:
        """Record ``topup`` as pending unless its session already has a top-up (a retried
        checkout); True if this call recorded it."""
        ...

    def by_session(self, checkout_session_id: str, *, for_update: bool = False) -> TopupRecord | None:
        """The session's top-up; ``for_update`` holds it until the unit of work ends, so two
        events for one session are decided one after the other."""
        ...

    def for_end_user(self, end_user_id: str, *, limit: int) -> list[TopupRecord]:
        """The end user's top-ups, newest first."""
        ...

    def move(
        self,
        topup_id: str,
        *,
        before: TopupStatus,
        after: TopupStatus,
        event_id: str,
        transaction_id: str | None = None,
    ) -> None:
        """Move the top-up from ``before`` to ``after`` (stamping the event that did it, and
        ``credited_at`` on a credit). Not in ``before`` any more is a bug: callers hold the row."""
        ...


class StripeEventRepository(Protocol):
    """Received Stripe events, each stored once with its answer."""

    def add_received(self, *, event_id: str, event_type: str, payload: str) -> bool:
        """Store the event (``processing``) unless its id is stored; True if this call stored
        it. A concurrent delivery of the same id waits here until the first one commits."""
        ...

    def answer_of(self, event_id: str) -> Mapping[str, Any] | None:
        """The answer stored with the event when it was handled."""
        ...

    def record_answer(self, event_id: str, *, status: StripeEventStatus, answer: Mapping[str, Any]) -> None:
        """Mark the event handled (or ignored) and store the answer a duplicate receives."""
        ...


class UsageRepository(Protocol):
    """Usage events: the rated model calls."""


class CatalogRepository(Protocol):
    """Developers, apps, features, model prices and end users."""

    def ensure_end_user(self, app_id: str, external_user_id: str) -> str:
        """The id of the app's end user ``external_user_id`` (stored only as a per-app hash),
        created if new (race-safe)."""
        ...


class SessionRepository(Protocol):
    """End-user sessions (stored as token hashes)."""


class ProviderKeyRepository(Protocol):
    """Encrypted provider keys."""


class ReportRepository(Protocol):
    """Read-only queries behind reports, reconciliation and listings."""
