"""What services may ask of storage: one repository protocol per aggregate.

A repository is the only code that knows its tables. Services speak in domain values
(:class:`~modelfaucet.domain.ledger.AccountState`, :class:`~modelfaucet.domain.ledger.Transaction`,
the records below) and never see SQL, rows or connections. The SQL implementations live
in ``adapters/db/repositories``; in-memory ones for the service tests in ``tests/fakes``.

Every write takes its timestamp from the unit of work (``uow.now``), so one operation
stamps all its rows with one moment.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from ..domain.audit import AuditEntry
from ..domain.catalog import CatalogStatus
from ..domain.earnings import EarningsGrouping, EarningsLine
from ..domain.ledger import AccountState, OwnerScope, Transaction
from ..domain.payouts import PayoutStatus

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


class TopupRepository(Protocol):
    """Stripe Checkout top-ups."""


class StripeEventRepository(Protocol):
    """Received Stripe events, each stored once with its outcome."""


class UsageRepository(Protocol):
    """Usage events: the rated model calls."""


# --- catalog: developers, apps and their secret keys, features, model prices, end users ---


@dataclass(frozen=True, slots=True)
class DeveloperRecord:
    id: str
    name: str
    email: str
    status: CatalogStatus
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AppRecord:
    id: str
    public_app_id: str
    developer_id: str
    name: str
    status: CatalogStatus
    default_revenue_share_bps: int
    default_markup_bps: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FeatureRecord:
    """A feature and its pricing; ``None`` markup or share means "the app's default"."""

    id: str
    app_id: str
    feature_key: str
    display_name: str
    markup_bps: int | None
    channel_share_bps: int | None
    explicit_gateway_fee_units: int
    pricing_version: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ModelPriceRecord:
    id: str
    provider: str
    model: str
    input_per_1m_units: int
    output_per_1m_units: int
    cached_per_1m_units: int
    version: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AppSecretKeyRecord:
    """An app's secret key as stored: never the key itself (only its hash is kept)."""

    id: str
    app_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class CatalogRepository(Protocol):
    """Developers, apps and their secret keys, features, model prices and end users.

    The ``ensure_*`` methods insert the proposed row unless one with the same natural key
    exists (race-safe: a concurrent insert is never an error) and return the stored row;
    the caller compares ids to learn whether it was its own."""

    def get_developer(self, developer_id: str) -> DeveloperRecord | None: ...

    def ensure_developer(self, proposed: DeveloperRecord) -> DeveloperRecord:
        """The developer with ``proposed.email``, created from ``proposed`` if none."""
        ...

    def get_app(self, public_app_id: str) -> AppRecord | None: ...

    def ensure_app(self, proposed: AppRecord) -> AppRecord:
        """The app with ``proposed.public_app_id``, created from ``proposed`` if none."""
        ...

    def ensure_feature(self, proposed: FeatureRecord) -> FeatureRecord:
        """The app's feature ``proposed.feature_key``, created from ``proposed`` if none."""
        ...

    def put_feature(
        self,
        app_id: str,
        feature_key: str,
        *,
        display_name: str,
        markup_bps: int | None,
        channel_share_bps: int | None,
        explicit_gateway_fee_units: int,
    ) -> FeatureRecord:
        """Create the feature at pricing version 1, or replace its pricing and bump the version."""
        ...

    def has_feature(self, app_id: str, feature_key: str) -> bool: ...

    def ensure_model_price(self, proposed: ModelPriceRecord) -> ModelPriceRecord:
        """The price of ``proposed.provider``/``proposed.model``, created from ``proposed`` if none."""
        ...

    def put_model_price(
        self,
        provider: str,
        model: str,
        *,
        input_per_1m_units: int,
        output_per_1m_units: int,
        cached_per_1m_units: int,
    ) -> ModelPriceRecord:
        """Create the price at version 1, or replace it and bump the version."""
        ...

    def ensure_end_user(self, app_id: str, external_user_id: str) -> str:
        """The id of the app's end user ``external_user_id`` (stored only as a per-app hash),
        created if new (race-safe)."""
        ...

    def add_end_user(self, app_id: str, external_user_id: str) -> str | None:
        """Create the app's end user ``external_user_id``; its id, or None if it already existed
        (exactly one of concurrent callers gets the id)."""
        ...

    def add_secret_key(self, key: AppSecretKeyRecord, *, key_hash: str) -> bool:
        """Store a key by its hash; False (and nothing written) if that hash is already stored."""
        ...

    def secret_keys(self, app_id: str) -> list[AppSecretKeyRecord]:
        """The app's keys, revoked ones included, oldest first."""
        ...

    def get_secret_key(self, app_id: str, key_id: str) -> AppSecretKeyRecord | None: ...

    def live_secret_key(self, key_hash: str) -> AppSecretKeyRecord | None:
        """The unrevoked key stored under ``key_hash``, of whichever app."""
        ...

    def revoke_secret_key(self, key_id: str) -> bool:
        """Revoke the key now; False if it was already revoked."""
        ...

    def mark_secret_key_used(self, key_id: str, *, unless_used_since: datetime) -> None:
        """Set ``last_used_at`` to now, unless the key was already used at or after ``unless_used_since``."""
        ...


# --- sessions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """An end-user session as stored: the token only as its hash."""

    id: str
    token_hash: str
    end_user_id: str
    app_id: str
    feature_key: str | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A session with the public id and status of its app, as authentication needs it."""

    session: SessionRecord
    public_app_id: str
    app_status: CatalogStatus


class SessionRepository(Protocol):
    """End-user sessions (stored as token hashes)."""

    def add(self, session: SessionRecord) -> None: ...

    def by_token_hash(self, token_hash: str) -> StoredSession | None: ...


# --- provider keys ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """A ciphertext and the id of the secret key that sealed it."""

    key_id: str
    ciphertext: str


@dataclass(frozen=True, slots=True)
class ProviderKeyRecord:
    """A provider key as anyone may see it: ``masked`` (``sk-…abcd``), never the key."""

    id: str
    owner_scope: OwnerScope
    owner_id: str
    provider: str
    masked: str
    base_url: str | None
    models_allowed: tuple[str, ...] | None
    active: bool
    created_at: datetime


class ProviderKeyRepository(Protocol):
    """Encrypted provider keys."""

    def add(self, key: ProviderKeyRecord, sealed: SealedSecret) -> None: ...

    def get(self, key_row_id: str) -> ProviderKeyRecord | None: ...

    def find(
        self, *, owner_scope: OwnerScope | None = None, owner_id: str | None = None, limit: int
    ) -> list[ProviderKeyRecord]:
        """Ordered by owner, then age."""
        ...

    def delete(self, key_row_id: str) -> None:
        """Remove the row and its ciphertext."""
        ...

    def sealed(self, key_row_id: str) -> SealedSecret | None: ...

    def count_not_sealed_with(self, key_id: str) -> int: ...

    def not_sealed_with(self, key_id: str, *, skip: Collection[str], limit: int) -> list[tuple[str, SealedSecret]]:
        """Up to ``limit`` (row id, sealed) pairs sealed by another key, by row id, except ``skip``."""
        ...

    def reseal(self, key_row_id: str, *, was: SealedSecret, sealed: SealedSecret) -> bool:
        """Replace the ciphertext only if it is still ``was``; False if the row changed or went."""
        ...


class ReportRepository(Protocol):
    """Read-only queries behind reports, reconciliation and listings."""


# --- provenance: what reconciliation ties each transaction to ------------------------------


@dataclass(frozen=True, slots=True)
class LedgerTransactionRecord:
    id: str
    reason: str
    reference_type: str | None
    reference_id: str | None
    postings: list[tuple[str, int]]  # (account id, signed amount)


@dataclass(frozen=True, slots=True)
class SourceRow:
    """A row that caused a transaction (an adjustment, a payout): what it says was moved."""

    id: str
    account_id: str
    amount_units: int
    transaction_id: str | None
    label: str  # adjustment: "kind.direction"; payout: its status


@dataclass(frozen=True, slots=True)
class AuditTie:
    action: str
    amount_units: int | None
    details: dict[str, Any]


class ProvenanceRepository(Protocol):
    def transaction_counts_by_reason(self) -> dict[str, int]: ...

    def transactions(
        self, reasons: list[str], *, exclude: bool = False, limit: int | None = None
    ) -> list[LedgerTransactionRecord]: ...

    def usage_event_transaction_count(self) -> int: ...

    def usage_transactions_without_their_event(self, reason: str, limit: int) -> list[str]: ...

    def adjustment_rows(self) -> list[SourceRow]: ...

    def paid_payout_rows(self) -> list[SourceRow]: ...

    def audit_ties(self, resource_type: str, actions: list[str]) -> dict[str, list[AuditTie]]: ...

    def append_only_guards(self) -> set[str]: ...

    def expected_append_only_guards(self) -> set[str]: ...


# --- developer access: developer tokens, and what a developer reads of their own ----------


@dataclass(frozen=True, slots=True)
class DeveloperTokenRecord:
    """A developer token as stored: never the token itself (only its hash is kept)."""

    id: str
    developer_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeveloperPayout:
    """A payout as its developer sees it: no operator names, no operator notes."""

    id: str
    developer_id: str
    amount_units: int
    status: PayoutStatus
    provider: str
    provider_payout_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PayoutStatusChange:
    """One step of a payout's history: ``before_status`` is None for its creation."""

    at: datetime
    before_status: PayoutStatus | None
    after_status: PayoutStatus


class DeveloperAccessRepository(Protocol):
    """Developer tokens, and the reads a developer token opens — each scoped to one developer:
    a row of another developer is answered exactly as a missing one (None)."""

    def add_token(self, token: DeveloperTokenRecord, *, token_hash: str) -> bool:
        """Store a token by its hash; False (and nothing written) if that hash is already stored."""
        ...

    def tokens(self, developer_id: str) -> list[DeveloperTokenRecord]:
        """The developer's tokens, revoked ones included, oldest first."""
        ...

    def get_token(self, developer_id: str, token_id: str) -> DeveloperTokenRecord | None: ...

    def live_token(self, token_hash: str) -> DeveloperTokenRecord | None:
        """The unrevoked token stored under ``token_hash``, of whichever developer."""
        ...

    def revoke_token(self, token_id: str) -> bool:
        """Revoke the token now; False if it was already revoked."""
        ...

    def mark_token_used(self, token_id: str, *, unless_used_since: datetime) -> None:
        """Set ``last_used_at`` to now, unless the token was used at or after ``unless_used_since``."""
        ...

    def apps(self, developer_id: str) -> list[AppRecord]:
        """The developer's apps, by ``public_app_id``."""
        ...

    def features(self, app_ids: Collection[str]) -> list[FeatureRecord]:
        """The features of those apps, by app then feature key."""
        ...

    def payouts(self, developer_id: str, *, status: PayoutStatus | None, limit: int) -> list[DeveloperPayout]:
        """The developer's payouts, newest first."""
        ...

    def payout(self, developer_id: str, payout_id: str) -> DeveloperPayout | None:
        """The payout if it is this developer's (another developer's is None, like an unknown id)."""
        ...

    def payout_history(self, payout_id: str) -> list[PayoutStatusChange]:
        """The payout's status changes, oldest first."""
        ...

    def open_payout_units(self, developer_id: str) -> int:
        """The sum of the developer's pending and processing payouts."""
        ...

    def earnings(
        self, app_ids: Collection[str], *, start: datetime, end: datetime, grouping: EarningsGrouping
    ) -> list[EarningsLine]:
        """The usage events of those apps created in [start, end), one line per group, by key
        (see :class:`~modelfaucet.domain.earnings.EarningsGrouping` for the keys)."""
        ...


# --- statements: a wallet's postings over a window, and its balance at any instant --------


class StatementLine(NamedTuple):
    """One posting as a statement lists it, with what its transaction refers to.

    A named tuple, not a frozen dataclass: a statement builds one per posting, and a tuple
    is built four times faster (B8)."""

    posting_id: int
    transaction_id: str
    amount_units: int
    reason: str
    created_at: datetime
    reference_type: str | None
    reference_id: str | None


class StatementRepository(Protocol):
    """Read-only: a wallet's postings by the moment they were created. Postings created at
    exactly an instant belong after it (windows are half-open)."""

    def balance_before(self, account_id: str, instant: datetime) -> int:
        """The balance rebuilt from the account's postings created before ``instant``."""
        ...

    def totals_by_reason(
        self, account_id: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> dict[str, int]:
        """The signed sum of the account's postings per reason, created in [start, end)
        (unbounded where None); reasons without postings are absent."""
        ...

    def lines(self, account_id: str, *, start: datetime, end: datetime) -> Iterator[StatementLine]:
        """The account's postings created in [start, end), by creation then posting id,
        streamed (memory does not grow with their number)."""
        ...
