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
from ..domain.rating import DefaultPricing, FeaturePricing, ModelPrice, RouteMode

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

    def ids_for(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(scope, owner) → id, for the accounts among ``keys`` that exist (one query)."""
        ...

    def lock_wallets(self, scope: OwnerScope, owner_ids: Sequence[str]) -> list[AccountState]:
        """The existing (scope, owner) accounts of ``owner_ids``, locked until the end of the
        unit of work, in id order (so concurrent lockers never deadlock)."""
        ...

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


class TopupRepository(Protocol):
    """Stripe Checkout top-ups."""


class StripeEventRepository(Protocol):
    """Received Stripe events, each stored once with its outcome."""


# --- usage: the rated model calls --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsageReceipt:
    """A recorded usage event: what the call cost, who earned what, and the end user's
    wallet balance right after it (what a duplicate report of it answers again)."""

    request_id: str
    usage_event_id: str
    transaction_id: str | None  # None: the call moved no money
    route_mode: RouteMode
    upstream_cost_units: int
    retail_price_units: int
    channel_revenue_units: int
    platform_revenue_units: int
    gateway_fee_units: int
    end_user_wallet_id: str | None
    end_user_balance_units: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredUsage:
    """A usage event as stored: its receipt, and the request it was recorded for (the
    fingerprint and its digest) to tell a duplicate from a conflicting reuse of its id."""

    receipt: UsageReceipt
    request_hash: str
    request: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NewUsage:
    """A usage event to store: the rated call and where it was posted."""

    receipt: UsageReceipt
    request_hash: str
    app_id: str
    public_app_id: str
    end_user_id: str
    feature_key: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    rating_snapshot: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class BillableApp:
    """What rating a call needs of its app: whether it may bill, who earns, its defaults."""

    id: str
    public_app_id: str
    developer_id: str
    active: bool
    defaults: DefaultPricing


@dataclass(frozen=True, slots=True)
class UsageLine:
    """One usage event in an app's recent usage."""

    created_at: datetime
    request_id: str
    feature_key: str
    route_mode: RouteMode
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    upstream_cost_units: int
    retail_price_units: int
    channel_revenue_units: int
    platform_revenue_units: int
    gateway_fee_units: int
    transaction_id: str | None


class UsageRepository(Protocol):
    """Usage events, and the catalogue a batch of them is rated with, loaded in one query each.

    The batch loaders take many keys and return a mapping with the ones that exist."""

    def find(self, request_ids: Collection[str]) -> dict[str, StoredUsage]:
        """The stored usage events among ``request_ids``, by request id."""
        ...

    def billable_apps(self, public_app_ids: Collection[str]) -> dict[str, BillableApp]:
        """By public app id."""
        ...

    def feature_pricing(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], FeaturePricing]:
        """By (app id, feature key)."""
        ...

    def model_prices(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], ModelPrice]:
        """The current price of each (provider, model)."""
        ...

    def end_user_ids(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """By (app id, external user id): the ids of the app's known end users."""
        ...

    def add_many(self, usages: Sequence[NewUsage]) -> None:
        """Store the usage events. A request id that is already stored (a concurrent
        transaction committed it first) raises
        :class:`~modelfaucet.services.unit_of_work.ConcurrentWrite`."""
        ...

    def recent(self, app_id: str, *, limit: int) -> list[UsageLine]:
        """The app's most recent usage events, newest first."""
        ...


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
