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
from ..domain.holds import HoldStatus
from ..domain.ledger import AccountState, OwnerScope, SystemAccount, Transaction
from ..domain.payouts import PayoutStatus
from ..domain.rating import DefaultPricing, FeaturePricing, ModelPrice, RouteMode
from ..domain.reconciliation import RunSource
from ..domain.reversals import Movement, ReversalKind, ReversalStatus
from ..domain.stripe_sync import SyncOutcome
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

    def ids_for(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(scope, owner) → id, for the accounts among ``keys`` that exist (one query)."""
        ...

    def lock_wallets(self, scope: OwnerScope, owner_ids: Sequence[str]) -> list[AccountState]:
        """The existing (scope, owner) accounts of ``owner_ids``, locked until the end of the
        unit of work, in id order (so concurrent lockers never deadlock)."""
        ...

    def debit_wallets(self, scope: OwnerScope, debits: Mapping[str, int]) -> list[AccountState] | None:
        """All or nothing, in one statement: lock the ``scope`` wallets of ``debits`` (account
        id → change, each ≤ 0) in id order and move each by its change — only if every one
        exists with that scope, has nothing reserved (no open hold or payout) and can pay. Their states
        after the move (locked until the end of the unit of work), or ``None`` when any of
        them cannot: then nothing moved and the caller decides the careful way."""
        ...

    def ensure(self, scope: OwnerScope, owner_id: str) -> str:
        """The id of the (scope, owner) account, created empty if missing (race-safe)."""
        ...

    def system_account(self, account: SystemAccount) -> str:
        """The id of a system account, as :meth:`ensure`; once a unit of work that read it
        has committed, without a query (system accounts are never deleted)."""
        ...

    def post(self, transaction: Transaction) -> str:
        """Post one balanced transaction; return its id. A constrained wallet that cannot pay
        raises :class:`~modelfaucet.domain.outcomes.InsufficientBalance` (nothing kept)."""
        ...

    def post_many(
        self,
        transactions: Sequence[Transaction],
        *,
        decided: Collection[str] = (),
        moved: Mapping[str, int] | None = None,
    ) -> list[str]:
        """Post many transactions, each account's balance moving once by its net change.

        ``decided`` names wallets the caller locked and already checked (the usage engine):
        they move in one statement, and a miss there is a bug, not a refusal. ``moved``: the
        wallets :meth:`debit_wallets` already moved, by how much (their net change here must
        be exactly that, else it is a bug). The other accounts move in id order, so
        concurrent posters never deadlock; with ``decided`` or ``moved`` (the usage engine)
        they move after the rows are written, so the hot platform, provider-cost and
        developer rows stay locked only until the commit."""
        ...

    def post_at_commit(self, transaction: Transaction) -> str:
        """Post one balanced transaction whose balances move only when the unit of work
        commits, as its last statements (each account once, wallets first, then the others in
        id order), so its hot rows stay locked only for the commit; its rows are written now.
        For credits that decide nothing on a balance (a Stripe top-up): a refusal (the ±limit)
        comes from ``commit()``, and nothing is kept. A read of an account through this
        repository moves them first."""
        ...

    def change_reserved(self, account_id: str, delta_units: int) -> None:
        """Reserve (delta > 0, needs that much available) or release (delta < 0) funds."""
        ...

    def change_reserved_many(self, deltas: Mapping[str, int]) -> None:
        """Move each wallet's reserved amount once by its net change (one statement). The
        caller locked and decided the wallets: a guard miss is
        :class:`~modelfaucet.domain.outcomes.LedgerInvariantViolation`."""
        ...

    def recent_postings(self, account_id: str, *, limit: int = 20, before_id: int | None = None) -> list[PostingLine]:
        """The account's postings, newest first; with ``before_id``, only older than that posting."""
        ...

    def posting_sum(self, account_id: str) -> int: ...


# --- audit ------------------------------------------------------------------------------


class AuditLog(Protocol):
    """Collects the operation's audit entries; the unit of work writes them last, unchained,
    and has them chained (hash chain position) right after it commits."""

    def add(self, entry: AuditEntry) -> None: ...

    def chain_committed(self) -> int:
        """Chain every committed row still unchained, in this unit of work (waits for the
        one chainer at a time); how many rows it chained."""
        ...


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

    def count_by_status(self) -> dict[PayoutStatus, int]:
        """How many payouts are in each status (statuses with none are left out)."""
        ...

    def oldest_open_created_at(self) -> datetime | None:
        """When the oldest open payout was created; None when none is open."""
        ...


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
    payment_intent_id: str | None = None
    # Read with the top-up when it is locked (``by_session(…, for_update=True)``): whether
    # its wallet has overdue held holds at the unit of work's time; None when not read.
    wallet_has_due_holds: bool | None = None


@dataclass(frozen=True, slots=True)
class ReversalRecord:
    """A refunded charge or a dispute of a top-up's payment, as stored.

    ``amount_cents``: a refund's posted total so far, a dispute's amount. ``wallet_units`` and
    ``uncollected_units``: where a dispute's debit was taken from (its reverse returns them).
    """

    id: str
    kind: ReversalKind
    stripe_object_id: str
    topup_id: str
    account_id: str
    status: ReversalStatus
    amount_cents: int
    wallet_units: int = 0
    uncollected_units: int = 0
    last_event_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReversalPostingRecord:
    """One ledger transaction a reversal posted (the transaction references this row's id)."""

    id: str
    reversal_id: str
    movement: Movement
    wallet_units: int
    uncollected_units: int
    amount_cents_after: int
    event_id: str
    transaction_id: str


class TopupRepository(Protocol):
    """Stripe Checkout top-ups, and the refunds and disputes of their payments."""

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

    def created_since(self, since: datetime) -> list[TopupRecord]:
        """Top-ups created at or after ``since``, oldest first."""
        ...

    def oldest_pending_created_at(self) -> datetime | None: ...

    def by_payment_intent(self, payment_intent_id: str) -> TopupRecord | None: ...

    def record_payment_intent(self, topup_id: str, payment_intent_id: str) -> None:
        """Remember the PaymentIntent of the top-up's paid session (once: a set one stays)."""
        ...

    def reversal(self, kind: ReversalKind, stripe_object_id: str, *, for_update: bool = False) -> ReversalRecord | None:
        """The refund or dispute of this Stripe object; ``for_update`` holds it until the unit
        of work ends, so two events for one object are decided one after the other."""
        ...

    def add_reversal(self, reversal: ReversalRecord) -> bool:
        """Store it unless its Stripe object is stored (race-safe); True if this call stored it."""
        ...

    def update_reversal(
        self,
        reversal_id: str,
        *,
        status: ReversalStatus,
        amount_cents: int,
        wallet_units: int,
        uncollected_units: int,
        event_id: str,
    ) -> None: ...

    def add_reversal_posting(self, posting: ReversalPostingRecord) -> None: ...

    def reversals(self) -> list[ReversalRecord]:
        """Every refund and dispute, for reconciliation."""
        ...

    def reversal_postings(self) -> list[ReversalPostingRecord]:
        """Every transaction the refunds and disputes posted, for reconciliation."""
        ...


@dataclass(frozen=True, slots=True)
class SyncRow:
    """One Checkout session as a sync compared it: Stripe's word, the top-up's, the outcome.

    ``stripe_status`` is the session's payment status once complete (``paid``, ``unpaid``),
    else its status (``open``, ``expired``); None when Stripe does not hold it.
    """

    checkout_session_id: str
    topup_id: str | None
    outcome: SyncOutcome
    stripe_status: str | None
    local_status: TopupStatus | None
    amount_units: int


@dataclass(frozen=True, slots=True)
class SyncRunRecord:
    """A sync that wrote its results (a dry run is never stored)."""

    id: str
    actor: str
    since: datetime
    summary: Mapping[str, int]
    flagged: tuple[SyncRow, ...]
    created_at: datetime


class StripeEventRepository(Protocol):
    """What Stripe told us: received events, each stored once with its answer, and the sync
    runs that compared Stripe's sessions with the top-ups."""

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

    def add_sync_run(self, run: SyncRunRecord) -> None: ...

    def last_sync_run(self) -> SyncRunRecord | None: ...


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
    hold_id: str | None = None  # the hold this event captured (SPEC §18)
    uncollected_units: int = 0  # the part of the price posted to uncollected_usage (a shortfall)


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


@dataclass(frozen=True, slots=True)
class BatchInputs:
    """What a usage batch is judged and rated with, read together (one round trip on
    PostgreSQL): the stored events among its request ids, the request ids a hold was
    placed with, and the apps, features and model prices its events name."""

    stored: dict[str, StoredUsage]  # by request id
    hold_request_ids: frozenset[str]
    apps: dict[str, BillableApp]  # by public app id
    features: dict[tuple[str, str], FeaturePricing]  # by (app id, feature key)
    prices: dict[tuple[str, str], ModelPrice]  # by (provider, model)


class UsageRepository(Protocol):
    """Usage events, and the catalogue a batch of them is rated with, loaded in one query each.

    The batch loaders take many keys and return a mapping with the ones that exist."""

    def find(self, request_ids: Collection[str]) -> dict[str, StoredUsage]:
        """The stored usage events among ``request_ids``, by request id."""
        ...

    def billable_apps(self, public_app_ids: Collection[str]) -> dict[str, BillableApp]:
        """By public app id."""
        ...

    def batch_inputs(
        self,
        request_ids: Collection[str],
        features: Collection[tuple[str, str]],
        prices: Collection[tuple[str, str]],
    ) -> BatchInputs:
        """:meth:`find`, the holds placed with ``request_ids``, and the apps, features (by
        (public app id, feature key)) and prices (by (provider, model)) of a batch, read
        together: the same answers as the separate loaders."""
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

    def end_user_wallets(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str | None]]:
        """By (app id, external user id): each known end user's id and its wallet's account id
        (``None`` while the end user has no wallet), in one query."""
        ...

    def add_many(self, usages: Sequence[NewUsage]) -> None:
        """Store the usage events. A request id that is already stored (a concurrent
        transaction committed it first) raises
        :class:`~modelfaucet.services.unit_of_work.ConcurrentWrite`."""
        ...

    def recent(self, app_id: str, *, limit: int) -> list[UsageLine]:
        """The app's most recent usage events, newest first."""
        ...


# --- holds: authorizations reserved before a model call (SPEC §18) -------------------------


@dataclass(frozen=True, slots=True)
class HoldRecord:
    """One hold as stored. While ``held``, ``amount_units`` is part of its wallet's reserved."""

    id: str
    request_id: str
    request_hash: str
    account_id: str
    app_id: str
    end_user_id: str
    amount_units: int
    status: HoldStatus
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None
    capture_request_id: str | None = None


class HoldRepository(Protocol):
    """Hold rows. Callers lock the wallet (``uow.ledger.lock_wallets``) before they end a
    hold, so wallet rows are always locked before hold rows."""

    def by_request_ids(self, request_ids: Collection[str]) -> dict[str, HoldRecord]:
        """The holds placed with any of ``request_ids``, by request id."""
        ...

    def by_ids(self, hold_ids: Collection[str]) -> dict[str, HoldRecord]: ...

    def add_many(self, holds: Sequence[HoldRecord]) -> None:
        """Store new holds. A request id stored first by a concurrent transaction raises
        :class:`~modelfaucet.services.unit_of_work.ConcurrentWrite`."""
        ...

    def capture_many(self, captures: Mapping[str, str]) -> int:
        """Move the ``held`` holds among ``captures`` (hold id → the request id of the usage
        event that captures it) to ``captured`` at ``uow.now``, naming that event (one
        statement for a batch); how many moved."""
        ...

    def end_many(self, hold_ids: Collection[str], status: HoldStatus) -> int:
        """Move the ``held`` holds among ``hold_ids`` to ``status`` at ``uow.now`` (one
        statement); how many moved."""
        ...

    def due(self, *, limit: int) -> list[HoldRecord]:
        """Held holds whose expiry has passed (``expires_at <= uow.now``), oldest first."""
        ...

    def due_on(self, account_ids: Collection[str]) -> list[HoldRecord]:
        """The held, expired holds of these wallets."""
        ...

    def open_on(self, account_id: str) -> list[HoldRecord]:
        """The wallet's held holds, oldest first."""
        ...

    def count_held(self) -> int:
        """How many holds are held right now, on every wallet (the metrics scrape)."""
        ...


# --- reconciliation runs: the last result, for the metrics of every process ---


@dataclass(frozen=True, slots=True)
class ReconciliationRun:
    """One finished reconciliation run: when, who ran it, how many problems it found and
    a one-line summary (the failing checks' names)."""

    id: str
    source: RunSource
    finished_at: datetime
    mismatches: int
    summary: str


class ReconciliationRunRepository(Protocol):
    def add(self, run: ReconciliationRun) -> None: ...

    def newest(self) -> ReconciliationRun | None:
        """The run that finished last (any source), or None before the first."""
        ...


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


# --- web sessions (console and portal) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebSessionRecord:
    """A signed-in browser as stored: the session id only as its hash (``id_hash``).

    ``principal`` is ``operator`` or ``developer``; ``subject`` the operator's name or the
    developer's id. ``csrf_secret`` is what every form of the session must carry back.
    ``developer_token_id`` is the developer token a portal session was opened with (None for
    operators, and for developer rows from before it was kept).

    ``developer_token_live`` is read, not stored: whether, when the row was read, that token
    was still live (found, not revoked, of this developer, and the developer ``active``) —
    worked out in the same query that loads the row. Always False without a token id."""

    id_hash: str
    principal: str
    subject: str
    csrf_secret: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    developer_token_id: str | None = None
    developer_token_live: bool = False


class WebSessionRepository(Protocol):
    """Web sessions of /console and /portal."""

    def add(self, session: WebSessionRecord) -> None: ...

    def get(self, id_hash: str) -> WebSessionRecord | None:
        """The session with ``developer_token_live`` filled in, in one read."""
        ...

    def touch(self, id_hash: str) -> None:
        """Set ``last_seen_at`` to now."""
        ...

    def delete(self, id_hash: str) -> bool:
        """Remove the session; False if there was none."""
        ...

    def delete_idle(self, *, last_seen_before: datetime) -> int:
        """Remove sessions last seen before the moment or past their ``expires_at``; how many."""
        ...


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
    open_holds_units: int = 0


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
    position: int  # chain_seq: 1, 2, … without gaps
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


@dataclass(frozen=True, slots=True)
class WalletQuery:
    """Which wallets a listing shows; every given condition must hold."""

    owner_scope: OwnerScope | None = None
    owner_id: str | None = None
    app_id: str | None = None  # end users of this app
    external_user_hash: str | None = None  # the end user stored under this per-app hash
    developer_email: str | None = None  # the developer's wallet and its apps' end users'
    limit: int = 100


@dataclass(frozen=True, slots=True)
class WalletOwner:
    """Who a wallet belongs to, as far as it is stored: an end user's app and its developer,
    or a developer. Never an end user's external id: only its per-app hash is stored."""

    public_app_id: str | None = None
    developer_id: str | None = None
    developer_email: str | None = None


@dataclass(frozen=True, slots=True)
class ListedWallet:
    wallet: AccountState
    owner: WalletOwner


@dataclass(frozen=True, slots=True)
class DailyUsage:
    """Usage of one UTC day (``day`` as ``YYYY-MM-DD``): calls and money, summed."""

    day: str
    calls: int
    retail_price_units: int
    platform_revenue_units: int
    upstream_cost_units: int


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

    def wallets(self, query: WalletQuery) -> list[ListedWallet]:
        """Accounts matching ``query`` with their owners, by owner scope, then owner id."""
        ...

    def audit_entries(self, query: AuditQuery) -> list[AuditRecord]:
        """Newest first; up to ``query.limit + 1`` rows, so the caller can tell if more follow."""
        ...

    def audit_history(self, resource_type: str, resource_id: str) -> list[AuditRecord]:
        """Every entry about one resource, oldest first."""
        ...

    def audit_chain(self, *, after_position: int, limit: int) -> list[AuditChainLink]:
        """The next ``limit`` chained rows after chain position ``after_position``, in chain order."""
        ...

    def audit_unchained(self, written_before: datetime) -> tuple[int, int | None]:
        """How many rows written before ``written_before`` are not chained, and the smallest id."""
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

    def usage_per_day(self, start: datetime, end: datetime) -> list[DailyUsage]:
        """Usage events created in [start, end), summed per UTC day, days without any left out."""
        ...

    def app_count(self) -> int: ...

    def payout_report_rows(self, start: datetime | None, end: datetime | None) -> Iterator[PayoutReportRow]:
        """Payouts oldest first (then by id)."""
        ...

    def payout_report_count(self, start: datetime | None, end: datetime | None) -> int: ...

    def report_csv_lines(self, name: str, start: datetime | None, end: datetime | None) -> Iterator[bytes] | None:
        """The data lines of report ``name`` formatted by the database, as CSV bytes (no header).

        Byte for byte what the report's Python rows give through the one CSV writer, streamed;
        ``None`` when this engine has no SQL path for the report (the caller formats in Python).
        """
        ...


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
        """The unrevoked token stored under ``token_hash``, of whichever developer — as long
        as that developer is ``active`` (a suspended developer's tokens open nothing)."""
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
