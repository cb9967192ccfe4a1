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


# How the audit trail and the ledger name a payout (resource / reference type).
PAYOUT_REFERENCE_TYPE = "payout"


@dataclass(frozen=True, slots=True)
class PayoutRecord:
    """A payout as stored: money owed to a developer, reserved on their wallet while open."""

    id: str
    developer_id: str
    account_id: str
    amount_units: int
    status: PayoutStatus
    provider: str
    provider_payout_id: str | None
    created_by: str
    approved_by: str | None
    operator_note: str | None
    transaction_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PayoutCandidate:
    """An active developer whose wallet has something available: run-mock looks closer."""

    developer_id: str
    account_id: str


class PayoutRepository(Protocol):
    """Payouts: the reviewable records of money owed to developers."""

    def candidates(self) -> list[PayoutCandidate]:
        """Active developers whose wallet has an available balance, in wallet-id order (the
        order run-mock locks them in)."""
        ...

    def has_open(self, developer_id: str) -> bool:
        """Whether the developer has a payout in one of the ``OPEN_STATUSES``."""
        ...

    def credited_since(self, account_id: str, *, since: datetime) -> int:
        """The sum of the credits posted to the account after ``since`` (revenue on hold)."""
        ...

    def add(self, payout: PayoutRecord) -> bool:
        """Insert the payout; False (nothing written) if the developer already has an open one."""
        ...

    def get(self, payout_id: str, *, for_update: bool = False) -> PayoutRecord | None: ...

    def require(self, payout_id: str, *, for_update: bool = False) -> PayoutRecord:
        """The payout, or :class:`~modelfaucet.domain.outcomes.NotFound` ("Payout was not found.")."""
        ...

    def update(self, payout: PayoutRecord, *, status_before: PayoutStatus) -> bool:
        """Store ``payout`` over the stored one if that is still ``status_before``; True if it was."""
        ...

    def latest(self, *, status: PayoutStatus | None, limit: int) -> list[PayoutRecord]:
        """Newest first (then by id), optionally of one status."""
        ...


class TopupRepository(Protocol):
    """Stripe Checkout top-ups."""


class StripeEventRepository(Protocol):
    """Received Stripe events, each stored once with its outcome."""


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


# --- reports, reconciliation and listings (read-only) ---------------------------------------


class AccountBalance(NamedTuple):
    """An account's stored balance beside the balance rebuilt from its postings.

    A named tuple rather than a frozen dataclass: reconciliation builds one per account
    (10k and more), and a tuple is built in less than half the time."""

    account_id: str
    owner_scope: str
    owner_id: str
    stored_units: int
    rebuilt_units: int
    reserved_units: int

    @property
    def delta_units(self) -> int:
        return self.stored_units - self.rebuilt_units


@dataclass(frozen=True, slots=True)
class UnbalancedTransaction:
    transaction_id: str
    sum_units: int
    posting_count: int


@dataclass(frozen=True, slots=True)
class UnbalancedTransactions:
    """How many transactions break "two or more postings summing to zero", and the first few."""

    count: int
    listed: list[UnbalancedTransaction]


@dataclass(frozen=True, slots=True)
class ReservationMismatch:
    account_id: str
    reserved_units: int
    open_payouts_units: int


@dataclass(frozen=True, slots=True)
class PaidPayoutMismatch:
    payout_id: str
    amount_units: int
    debited_units: int | None  # None: no mock_payout_paid debit at all


@dataclass(frozen=True, slots=True)
class UsagePostingMismatch:
    """A usage event whose stored amounts differ from its postings (posted per role, signed as
    the event stores them: ``posted_retail_units`` is the debit of the end user, positive)."""

    request_id: str
    transaction_id: str | None
    retail_price_units: int
    posted_retail_units: int
    upstream_cost_units: int
    posted_upstream_units: int
    channel_revenue_units: int
    posted_channel_units: int
    platform_revenue_units: int
    posted_platform_units: int


@dataclass(frozen=True, slots=True)
class CreditedTopup:
    topup_id: str
    account_id: str
    amount_units: int
    transaction_id: str | None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored row of the audit trail."""

    id: int
    created_at: datetime
    actor: str
    action: str
    resource_type: str
    resource_id: str | None
    before_status: str | None
    after_status: str | None
    amount_units: int | None
    note: str | None
    request_id: str | None
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of the audit trail, combined with AND; ``start`` inclusive, ``end`` exclusive,
    ``before_id`` the paging cursor (newest first)."""

    actor: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    before_id: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class AuditChainLink:
    """A row of the audit chain as its verifier needs it: the hashes it stores, and the hash
    its content gives with its stored ``prev_hash`` (the chain's hashing rule lives with its
    writer, ``adapters/db/audit.py``)."""

    id: int
    prev_hash: str | None
    row_hash: str | None
    content_hash: str


# One row of usage.csv as stored: created_at, request_id, public_app_id, feature_key,
# route_mode, provider, model, input_tokens, output_tokens, upstream_cost_units,
# retail_price_units, channel_revenue_units, platform_revenue_units. A plain tuple, not a
# record: a million-row export unpacks it in its hot loop.
UsageReportRow = tuple[datetime, str, str, str, str, str, str, int, int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class RevenueReportRow:
    public_app_id: str
    developer_id: str
    developer_email: str
    calls: int
    upstream_cost_units: int
    retail_price_units: int
    channel_revenue_units: int
    platform_revenue_units: int


@dataclass(frozen=True, slots=True)
class PayoutReportRow:
    payout: PayoutRecord
    developer_email: str


class ReportRepository(Protocol):
    """Read-only queries behind reports, reconciliation and listings.

    Report rows are iterators over a server-side cursor: consume them while the unit of work
    is open, and memory stays flat whatever the row count."""

    # -- reconciliation --

    def account_balances(self) -> list[AccountBalance]:
        """Every account, stored and rebuilt balance (unordered)."""
        ...

    def unbalanced_transactions(self, *, limit: int) -> UnbalancedTransactions:
        """Transactions with fewer than two postings or postings not summing to zero."""
        ...

    def reservation_mismatches(self) -> list[ReservationMismatch]:
        """Accounts whose reserved amount differs from the sum of their open payouts."""
        ...

    def paid_payout_mismatches(self) -> list[PaidPayoutMismatch]:
        """Paid payouts without one mock_payout_paid debit of exactly their amount."""
        ...

    def usage_posting_mismatches(self, *, limit: int) -> list[UsagePostingMismatch]:
        """Usage events whose postings differ from their stored amounts, by request id."""
        ...

    def topup_postings(self) -> dict[str, list[tuple[str, int]]]:
        """transaction id → (account id, amount) postings of every Stripe top-up transaction."""
        ...

    def credited_topups(self) -> list[CreditedTopup]:
        """Credited top-ups, by id."""
        ...

    # -- listings --

    def wallets(self, *, owner_scope: OwnerScope | None, owner_id: str | None, limit: int) -> list[AccountState]:
        """Accounts by owner scope, then owner id."""
        ...

    def audit_entries(self, query: AuditQuery) -> list[AuditRecord]:
        """Newest first; up to ``query.limit + 1`` rows, so the caller can tell if more follow."""
        ...

    def audit_history(self, resource_type: str, resource_id: str) -> list[AuditRecord]:
        """Every entry about one resource, oldest first."""
        ...

    def audit_chain(self, *, after_id: int, limit: int) -> list[AuditChainLink]:
        """The next ``limit`` rows of the audit chain after ``after_id``, in id order."""
        ...

    def audit_genesis_hash(self) -> str:
        """The ``prev_hash`` of the chain's first row."""
        ...

    # -- CSV reports: rows within [start, end) of their created_at --

    def usage_report_pages(self, start: datetime | None, end: datetime | None) -> Iterator[Sequence[UsageReportRow]]:
        """usage.csv's rows by created_at then request id, a page at a time."""
        ...

    def usage_report_count(self, start: datetime | None, end: datetime | None) -> int: ...

    def revenue_report_rows(self, start: datetime | None, end: datetime | None) -> Iterator[RevenueReportRow]:
        """One row per app (zeros without usage in the window), by public app id."""
        ...

    def app_count(self) -> int: ...

    def payout_report_rows(self, start: datetime | None, end: datetime | None) -> Iterator[PayoutReportRow]:
        """Payouts oldest first (then by id)."""
        ...

    def payout_report_count(self, start: datetime | None, end: datetime | None) -> int: ...
