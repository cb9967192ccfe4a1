"""Table definitions (SQLAlchemy Core), shared by PostgreSQL and SQLite.

Money columns are BIGINT counts of 1e-8 USD (suffix ``_units``). Ids are UUID strings,
except postings and audit rows, which use integer keys for append speed. The migrations
under ``migrations/versions`` create exactly these tables; a test checks they agree.

Every list of statuses or kinds that a CHECK constraint or a partial index spells out is
built from its domain enum (:func:`one_of`), so a new status is added in one place; a
test checks that the migrated database lists exactly the enum's values.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from ...domain.adjustments import AdjustmentKind, Direction
from ...domain.holds import OPEN_HOLD_STATUSES, HoldStatus
from ...domain.idempotency import KeyState
from ...domain.ledger import CONSTRAINED_SCOPES, OwnerScope
from ...domain.payouts import OPEN_STATUSES, PayoutStatus
from ...domain.rating import RouteMode
from ...domain.reconciliation import SUMMARY_MAX, RunSource
from ...domain.reversals import Movement, ReversalKind, ReversalStatus
from ...domain.stripe_sync import SessionStatus
from ...domain.topups import TopupStatus
from ...domain.web_sessions import Principal

# SQLite only auto-increments an INTEGER PRIMARY KEY, so big integer keys use that there.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _ts(name: str, *, nullable: bool = False) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def one_of(column: str, values: Iterable[StrEnum], *, negate: bool = False) -> str:
    """``column IN ('a','b')`` (or ``NOT IN``) for enum values, in the enum's own order."""
    members = list(values)
    if not members or any("'" in str(member) for member in members):
        raise ValueError(f"no SQL list can be built for {column} from {members!r}")
    listed = ",".join(f"'{member}'" for member in sorted(members, key=list(type(members[0])).index))
    return f"{column} {'NOT IN' if negate else 'IN'} ({listed})"


developers = Table(
    "developers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False, unique=True),
    Column("status", String(16), nullable=False, server_default="active"),
    _ts("created_at"),
)

apps = Table(
    "apps",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("public_app_id", String(64), nullable=False, unique=True),
    Column("developer_id", String(36), ForeignKey("developers.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("default_revenue_share_bps", Integer, nullable=False),
    Column("default_markup_bps", Integer, nullable=False, server_default="3000"),
    _ts("created_at"),
    CheckConstraint("default_revenue_share_bps BETWEEN 0 AND 10000", name="share_bps"),
    CheckConstraint("default_markup_bps >= 0", name="markup_bps"),
)

app_features = Table(
    "app_features",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("app_id", String(36), ForeignKey("apps.id"), nullable=False),
    Column("feature_key", String(64), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("markup_bps", Integer, nullable=True),
    Column("channel_share_bps", Integer, nullable=True),
    Column("explicit_gateway_fee_units", BigInteger, nullable=False, server_default="0"),
    Column("pricing_version", Integer, nullable=False, server_default="1"),
    _ts("created_at"),
    _ts("updated_at"),
    UniqueConstraint("app_id", "feature_key", name="uq_app_features_app_feature"),
    CheckConstraint("channel_share_bps IS NULL OR channel_share_bps BETWEEN 0 AND 10000", name="share_bps"),
    CheckConstraint("markup_bps IS NULL OR markup_bps >= 0", name="markup_bps"),
    CheckConstraint("explicit_gateway_fee_units >= 0", name="fee"),
)

model_prices = Table(
    "model_prices",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("provider", String(64), nullable=False),
    Column("model", String(128), nullable=False),
    Column("input_per_1m_units", BigInteger, nullable=False),
    Column("output_per_1m_units", BigInteger, nullable=False),
    Column("cached_per_1m_units", BigInteger, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    _ts("created_at"),
    _ts("updated_at"),
    UniqueConstraint("provider", "model", name="uq_model_prices_provider_model"),
    CheckConstraint(
        "input_per_1m_units >= 0 AND output_per_1m_units >= 0 AND cached_per_1m_units >= 0",
        name="non_negative",
    ),
)

end_users = Table(
    "end_users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("app_id", String(36), ForeignKey("apps.id"), nullable=False),
    # The external user id is kept only as an HMAC per app, never in clear.
    Column("external_user_hash", String(64), nullable=False),
    _ts("created_at"),
    UniqueConstraint("app_id", "external_user_hash", name="uq_end_users_app_external"),
)

user_sessions = Table(
    "user_sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("end_user_id", String(36), ForeignKey("end_users.id"), nullable=False),
    Column("app_id", String(36), ForeignKey("apps.id"), nullable=False),
    Column("feature_key", String(64), nullable=True),
    _ts("created_at"),
    _ts("expires_at"),
)

# Wallets and system accounts: one row per account, with its stored balance.
accounts = Table(
    "accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_scope", String(16), nullable=False),
    Column("owner_id", String(64), nullable=False),
    Column("currency", String(3), nullable=False, server_default="USD"),
    Column("balance_units", BigInteger, nullable=False, server_default="0"),
    Column("reserved_units", BigInteger, nullable=False, server_default="0"),
    _ts("created_at"),
    _ts("updated_at"),
    UniqueConstraint("owner_scope", "owner_id", name="uq_accounts_owner"),
    CheckConstraint(one_of("owner_scope", OwnerScope), name="owner_scope"),
    CheckConstraint("reserved_units >= 0", name="reserved_non_negative"),
    # Invariant 4, enforced by the database as well as by the posting engine.
    CheckConstraint(
        one_of("owner_scope", CONSTRAINED_SCOPES, negate=True) + " OR balance_units >= reserved_units",
        name="constrained_balance",
    ),
)

ledger_transactions = Table(
    "ledger_transactions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("reason", String(64), nullable=False),
    Column("reference_type", String(32), nullable=True),
    Column("reference_id", String(128), nullable=True),
    _ts("created_at"),
)
Index(
    "ix_ledger_transactions_reference",
    ledger_transactions.c.reference_type,
    ledger_transactions.c.reference_id,
)

ledger_postings = Table(
    "ledger_postings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("transaction_id", String(36), ForeignKey("ledger_transactions.id"), nullable=False),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    # Signed: credit > 0, debit < 0.
    Column("amount_units", BigInteger, nullable=False),
    Column("reason", String(64), nullable=False),
    _ts("created_at"),
    CheckConstraint("amount_units <> 0", name="non_zero"),
)
Index("ix_ledger_postings_account", ledger_postings.c.account_id, ledger_postings.c.id)
# Covering (transaction_id, amount_units): reconciliation's per-transaction balance check
# streams it in order (index-only scan, no hash table) instead of aggregating the heap.
Index("ix_ledger_postings_transaction", ledger_postings.c.transaction_id, ledger_postings.c.amount_units)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _ts("created_at"),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("resource_type", String(32), nullable=False),
    Column("resource_id", String(128), nullable=True),
    Column("before_status", String(32), nullable=True),
    Column("after_status", String(32), nullable=True),
    Column("amount_units", BigInteger, nullable=True),
    Column("note", Text, nullable=True),
    Column("request_id", String(128), nullable=True),
    Column("details", JSON, nullable=True),
    Column("prev_hash", String(64), nullable=True),
    Column("row_hash", String(64), nullable=True),
    # Position in the hash chain (1, 2, … gapless); NULL until the chainer reaches the row.
    Column("chain_seq", BigInteger, nullable=True),
)
Index("ix_audit_log_resource", audit_log.c.resource_type, audit_log.c.resource_id)
Index("uq_audit_log_chain_seq", audit_log.c.chain_seq, unique=True)
Index(
    "ix_audit_log_unchained",
    audit_log.c.id,
    postgresql_where=audit_log.c.chain_seq.is_(None),
    sqlite_where=audit_log.c.chain_seq.is_(None),
)

stripe_topups = Table(
    "stripe_topups",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("checkout_session_id", String(255), nullable=False, unique=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("end_user_id", String(36), ForeignKey("end_users.id"), nullable=False),
    Column("amount_units", BigInteger, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False, server_default="usd"),
    Column("status", String(16), nullable=False),
    Column("checkout_url", Text, nullable=True),
    Column("transaction_id", String(36), ForeignKey("ledger_transactions.id"), nullable=True),
    Column("last_event_id", String(255), nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("credited_at", nullable=True),
    # Stripe's PaymentIntent of the paid session: refunds and disputes name it, not the session.
    Column("payment_intent_id", String(255), nullable=True),
    CheckConstraint("amount_units > 0 AND amount_cents > 0", name="positive"),
    CheckConstraint(one_of("status", TopupStatus), name="status"),
)
Index("ix_stripe_topups_end_user", stripe_topups.c.end_user_id, stripe_topups.c.created_at)
Index("ix_stripe_topups_created", stripe_topups.c.created_at)
Index("uq_stripe_topups_payment_intent", stripe_topups.c.payment_intent_id, unique=True)

stripe_events = Table(
    "stripe_events",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("type", String(128), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("response_status", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    _ts("received_at"),
    _ts("processed_at", nullable=True),
)

usage_events = Table(
    "usage_events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("request_id", String(128), nullable=False, unique=True),
    Column("request_hash", String(64), nullable=False),
    Column("app_id", String(36), ForeignKey("apps.id"), nullable=False),
    Column("public_app_id", String(64), nullable=False),
    Column("end_user_id", String(36), ForeignKey("end_users.id"), nullable=False),
    Column("feature_key", String(64), nullable=False),
    Column("route_mode", String(16), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("model", String(128), nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("upstream_cost_units", BigInteger, nullable=False),
    Column("retail_price_units", BigInteger, nullable=False),
    Column("channel_revenue_units", BigInteger, nullable=False),
    Column("platform_revenue_units", BigInteger, nullable=False),
    Column("gateway_fee_units", BigInteger, nullable=False, server_default="0"),
    # What the event was rated with, so it can be explained and re-rated later.
    Column("rating_snapshot", JSON, nullable=False),
    Column("transaction_id", String(36), ForeignKey("ledger_transactions.id"), nullable=True),
    _ts("created_at"),
    CheckConstraint(
        "retail_price_units = upstream_cost_units + channel_revenue_units + platform_revenue_units",
        name="parts_sum",
    ),
    CheckConstraint(one_of("route_mode", RouteMode), name="route_mode"),
)
Index("ix_usage_events_created", usage_events.c.created_at)
Index("ix_usage_events_app_created", usage_events.c.app_id, usage_events.c.created_at)

adjustments = Table(
    "adjustments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("amount_units", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("idempotency_key", String(128), nullable=True),
    Column("actor", String(128), nullable=False),
    Column("transaction_id", String(36), ForeignKey("ledger_transactions.id"), nullable=True),
    _ts("created_at"),
    CheckConstraint("amount_units > 0", name="positive"),
    CheckConstraint(one_of("kind", AdjustmentKind), name="kind"),
    CheckConstraint(one_of("direction", Direction), name="direction"),
)
Index("ix_adjustments_account", adjustments.c.account_id, adjustments.c.created_at)

# Stored results of idempotent requests: replayed byte for byte, kept >= 24 h.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(128), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("request_summary", JSON, nullable=True),
    Column("state", String(16), nullable=False),
    Column("response_status", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    _ts("created_at"),
    _ts("expires_at"),
    CheckConstraint(one_of("state", KeyState), name="state"),
)

payouts = Table(
    "payouts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("developer_id", String(36), ForeignKey("developers.id"), nullable=False),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("amount_units", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("provider", String(32), nullable=False, server_default="mock"),
    Column("provider_payout_id", String(64), nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("approved_by", String(128), nullable=True),
    Column("operator_note", Text, nullable=True),
    Column("transaction_id", String(36), ForeignKey("ledger_transactions.id"), nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    CheckConstraint("amount_units > 0", name="positive"),
    CheckConstraint(one_of("status", PayoutStatus), name="status"),
)
# At most one open payout per developer, enforced by the database.
Index(
    "uq_payouts_open_per_developer",
    payouts.c.developer_id,
    unique=True,
    postgresql_where=text(one_of("status", OPEN_STATUSES)),
    sqlite_where=text(one_of("status", OPEN_STATUSES)),
)
Index("ix_payouts_status_created", payouts.c.status, payouts.c.created_at)

provider_keys = Table(
    "provider_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_scope", String(16), nullable=False),
    Column("owner_id", String(64), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("ciphertext", Text, nullable=False),
    Column("masked", String(32), nullable=False),
    Column("base_url", Text, nullable=True),
    Column("models_allowed", JSON, nullable=True),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    _ts("created_at"),
    _ts("updated_at"),
)
Index("ix_provider_keys_owner", provider_keys.c.owner_scope, provider_keys.c.owner_id)

# Tables whose rows are never updated or deleted (invariant 5).
APPEND_ONLY_TABLES = ("ledger_transactions", "ledger_postings")

# An app's secret keys (SPEC §4): its backend mints end-user sessions with one. Only the
# SHA-256 of the key is stored; a revoked key keeps its row (and its revoked_at) for the record.
app_secret_keys = Table(
    "app_secret_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("app_id", String(36), ForeignKey("apps.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    _ts("created_at"),
    _ts("last_used_at", nullable=True),
    _ts("revoked_at", nullable=True),
)
Index("ix_app_secret_keys_app", app_secret_keys.c.app_id, app_secret_keys.c.created_at)

# --- Stripe follows the ledger: refunds, disputes, sync runs, the offline provider (SPEC §20)

# A refunded charge, or a dispute, of a top-up's payment: one row per Stripe object, held
# while an event for it is decided.
stripe_reversals = Table(
    "stripe_reversals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("stripe_object_id", String(255), nullable=False),
    Column("topup_id", String(36), ForeignKey("stripe_topups.id"), nullable=False),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("status", String(16), nullable=False),
    # A refund: the charge's refunded total posted so far. A dispute: the disputed amount.
    Column("amount_cents", BigInteger, nullable=False),
    # What a dispute's debit took from the wallet and from uncollected: its reverse returns them.
    Column("wallet_units", BigInteger, nullable=False, server_default="0"),
    Column("uncollected_units", BigInteger, nullable=False, server_default="0"),
    Column("last_event_id", String(255), nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    UniqueConstraint("kind", "stripe_object_id", name="uq_stripe_reversals_object"),
    CheckConstraint(one_of("kind", ReversalKind), name="kind"),
    CheckConstraint(one_of("status", ReversalStatus), name="status"),
    CheckConstraint("amount_cents >= 0 AND wallet_units >= 0 AND uncollected_units >= 0", name="non_negative"),
)
Index("ix_stripe_reversals_topup", stripe_reversals.c.topup_id)

# One row per ledger transaction a reversal posted. The unique key is "once per Stripe
# object and amount": a refund's growing total, a dispute's debit and its one reverse.
stripe_reversal_postings = Table(
    "stripe_reversal_postings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("reversal_id", String(36), ForeignKey("stripe_reversals.id"), nullable=False),
    Column("movement", String(16), nullable=False),
    Column("wallet_units", BigInteger, nullable=False),
    Column("uncollected_units", BigInteger, nullable=False),
    Column("amount_cents_after", BigInteger, nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("transaction_id", String(36), ForeignKey("ledger_transactions.id"), nullable=False, unique=True),
    _ts("created_at"),
    UniqueConstraint("reversal_id", "movement", "amount_cents_after", name="uq_stripe_reversal_postings_once"),
    CheckConstraint(one_of("movement", Movement), name="movement"),
    CheckConstraint(
        "wallet_units >= 0 AND uncollected_units >= 0 AND wallet_units + uncollected_units > 0", name="amounts"
    ),
)

# Each (non dry-run) sync: when, by whom, over which window, its counts and flagged rows.
stripe_sync_runs = Table(
    "stripe_sync_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("actor", String(128), nullable=False),
    _ts("since"),
    Column("summary", JSON, nullable=False),
    Column("flagged", JSON, nullable=False),
    _ts("created_at"),
)
Index("ix_stripe_sync_runs_created", stripe_sync_runs.c.created_at)

# The offline test-mode provider's own record of the Checkout sessions it created and
# their simulated state: what Stripe would hold, for `stripe sync` and `stripe simulate`.
stripe_offline_sessions = Table(
    "stripe_offline_sessions",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("payment_status", String(32), nullable=False),
    Column("payment_intent_id", String(255), nullable=True),
    Column("charge_id", String(255), nullable=True),
    Column("amount_refunded_cents", BigInteger, nullable=False, server_default="0"),
    Column("dispute_id", String(255), nullable=True),
    Column("dispute_status", String(32), nullable=True),
    Column("dispute_amount_cents", BigInteger, nullable=True),
    Column("session_metadata", JSON, nullable=True),
    _ts("created_at"),
    _ts("expires_at"),
    _ts("updated_at"),
    CheckConstraint(one_of("status", SessionStatus), name="status"),
)
Index("ix_stripe_offline_sessions_created", stripe_offline_sessions.c.created_at)

# A developer's tokens (SPEC §17): they open the developer's own /v1/developer/* routes and
# nothing else. Only the SHA-256 of a token is stored; a revoked token keeps its row.
developer_tokens = Table(
    "developer_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("developer_id", String(36), ForeignKey("developers.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    _ts("created_at"),
    _ts("last_used_at", nullable=True),
    _ts("revoked_at", nullable=True),
)
Index("ix_developer_tokens_developer", developer_tokens.c.developer_id, developer_tokens.c.created_at)

# Statements and point-in-time balances (SPEC §19) read one wallet's postings by the moment
# they were created: a range of this index, however many postings other wallets hold. It
# carries the amount (PostgreSQL), so a balance at an instant is an index-only range sum.
Index(
    "ix_ledger_postings_account_created",
    ledger_postings.c.account_id,
    ledger_postings.c.created_at,
    ledger_postings.c.id,
    postgresql_include=["amount_units"],
)
# A developer's payouts, newest first.
Index("ix_payouts_developer_created", payouts.c.developer_id, payouts.c.created_at)
# Authorization holds (SPEC §18): one row per hold, its transitions as timestamps. While
# ``held``, its amount is part of the wallet's ``reserved_units`` (with open payouts).
holds = Table(
    "holds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("request_id", String(128), nullable=False, unique=True),
    Column("request_hash", String(64), nullable=False),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("app_id", String(36), ForeignKey("apps.id"), nullable=False),
    Column("end_user_id", String(36), ForeignKey("end_users.id"), nullable=False),
    Column("amount_units", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("capture_request_id", String(128), nullable=True),
    _ts("created_at"),
    _ts("expires_at"),
    _ts("ended_at", nullable=True),
    CheckConstraint("amount_units > 0", name="positive"),
    CheckConstraint(one_of("status", HoldStatus), name="status"),
    CheckConstraint(f"({one_of('status', OPEN_HOLD_STATUSES)}) = (ended_at IS NULL)", name="ended"),
)
Index("ix_holds_open_by_account", holds.c.account_id, holds.c.status, holds.c.expires_at)
Index("ix_holds_open_by_expiry", holds.c.status, holds.c.expires_at)

# Reconciliation runs (issue 19): every run, from the API, the CLI or the service's own
# periodic run, leaves one row, so the service's metrics show the newest run whichever
# process made it.
reconciliation_runs = Table(
    "reconciliation_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("source", String(16), nullable=False),
    _ts("finished_at"),
    Column("mismatches", Integer, nullable=False),
    Column("summary", String(SUMMARY_MAX), nullable=False),
    CheckConstraint(one_of("source", RunSource), name="source"),
    CheckConstraint("mismatches >= 0", name="mismatches_not_negative"),
)
Index("ix_reconciliation_runs_finished", reconciliation_runs.c.finished_at, reconciliation_runs.c.id)


# Signed-in browsers of /console and /portal (SPEC §21): the session id only as its
# SHA-256; the operator's name or the developer's id; the session's CSRF secret.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("principal", String(16), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("csrf_secret", String(64), nullable=False),
    _ts("created_at"),
    _ts("last_seen_at"),
    _ts("expires_at"),
    # The developer token a portal session was opened with (NULL for operators): the session
    # lives only while that token does (migration 0010).
    Column("developer_token_id", String(36), ForeignKey("developer_tokens.id"), nullable=True),
    CheckConstraint(one_of("principal", Principal), name="principal"),
)
Index("ix_web_sessions_last_seen", web_sessions.c.last_seen_at)
