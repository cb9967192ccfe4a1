"""initial schema: all tables, plus triggers that keep ledger rows append-only

Revision ID: 0001
Revises:
Create Date: 2026-11-24 07:07:11.742123
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

APPEND_ONLY_TABLES = ("ledger_transactions", "ledger_postings")


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_scope", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="USD", nullable=False),
        sa.Column("balance_units", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("reserved_units", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "owner_scope IN ('end_user','developer','platform','provider_cost','system')",
            name=op.f("ck_accounts_owner_scope"),
        ),
        sa.CheckConstraint(
            "owner_scope NOT IN ('end_user','developer') OR balance_units >= reserved_units",
            name=op.f("ck_accounts_constrained_balance"),
        ),
        sa.CheckConstraint("reserved_units >= 0", name=op.f("ck_accounts_reserved_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("owner_scope", "owner_id", name="uq_accounts_owner"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.String(length=128), nullable=True),
        sa.Column("before_status", sa.String(length=32), nullable=True),
        sa.Column("after_status", sa.String(length=32), nullable=True),
        sa.Column("amount_units", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=True),
        sa.Column("row_hash", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_resource", ["resource_type", "resource_id"], unique=False)

    op.create_table(
        "developers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_developers")),
        sa.UniqueConstraint("email", name=op.f("uq_developers_email")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("request_summary", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('in_flight','done')", name=op.f("ck_idempotency_keys_state")),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("reference_type", sa.String(length=32), nullable=True),
        sa.Column("reference_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
    )
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_transactions_reference", ["reference_type", "reference_id"], unique=False)

    op.create_table(
        "model_prices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("input_per_1m_units", sa.BigInteger(), nullable=False),
        sa.Column("output_per_1m_units", sa.BigInteger(), nullable=False),
        sa.Column("cached_per_1m_units", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "input_per_1m_units >= 0 AND output_per_1m_units >= 0 AND cached_per_1m_units >= 0",
            name=op.f("ck_model_prices_non_negative"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_prices")),
        sa.UniqueConstraint("provider", "model", name="uq_model_prices_provider_model"),
    )
    op.create_table(
        "provider_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_scope", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("masked", sa.String(length=32), nullable=False),
        sa.Column("base_url", sa.Text(), nullable=True),
        sa.Column("models_allowed", sa.JSON(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("(true)"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_keys")),
    )
    with op.batch_alter_table("provider_keys", schema=None) as batch_op:
        batch_op.create_index("ix_provider_keys_owner", ["owner_scope", "owner_id"], unique=False)

    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )
    op.create_table(
        "adjustments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("amount_units", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("transaction_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("direction IN ('credit','debit')", name=op.f("ck_adjustments_direction")),
        sa.CheckConstraint("kind IN ('adjustment','refund','chargeback')", name=op.f("ck_adjustments_kind")),
        sa.CheckConstraint("amount_units > 0", name=op.f("ck_adjustments_positive")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_adjustments_account_id_accounts")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_adjustments_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adjustments")),
    )
    with op.batch_alter_table("adjustments", schema=None) as batch_op:
        batch_op.create_index("ix_adjustments_account", ["account_id", "created_at"], unique=False)

    op.create_table(
        "apps",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("public_app_id", sa.String(length=64), nullable=False),
        sa.Column("developer_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("default_revenue_share_bps", sa.Integer(), nullable=False),
        sa.Column("default_markup_bps", sa.Integer(), server_default="3000", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("default_markup_bps >= 0", name=op.f("ck_apps_markup_bps")),
        sa.CheckConstraint("default_revenue_share_bps BETWEEN 0 AND 10000", name=op.f("ck_apps_share_bps")),
        sa.ForeignKeyConstraint(["developer_id"], ["developers.id"], name=op.f("fk_apps_developer_id_developers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apps")),
        sa.UniqueConstraint("public_app_id", name=op.f("uq_apps_public_app_id")),
    )
    op.create_table(
        "ledger_postings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("amount_units", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_units <> 0", name=op.f("ck_ledger_postings_non_zero")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_ledger_postings_account_id_accounts")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_postings_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_postings")),
    )
    with op.batch_alter_table("ledger_postings", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_postings_account", ["account_id", "id"], unique=False)
        batch_op.create_index("ix_ledger_postings_transaction", ["transaction_id", "amount_units"], unique=False)

    op.create_table(
        "payouts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("developer_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("amount_units", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=32), server_default="mock", nullable=False),
        sa.Column("provider_payout_id", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("approved_by", sa.String(length=128), nullable=True),
        sa.Column("operator_note", sa.Text(), nullable=True),
        sa.Column("transaction_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending','processing','paid','failed','cancelled')", name=op.f("ck_payouts_status")
        ),
        sa.CheckConstraint("amount_units > 0", name=op.f("ck_payouts_positive")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_payouts_account_id_accounts")),
        sa.ForeignKeyConstraint(["developer_id"], ["developers.id"], name=op.f("fk_payouts_developer_id_developers")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_payouts_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
    )
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.create_index("ix_payouts_status_created", ["status", "created_at"], unique=False)
        batch_op.create_index(
            "uq_payouts_open_per_developer",
            ["developer_id"],
            unique=True,
            postgresql_where=sa.text("status IN ('pending','processing')"),
            sqlite_where=sa.text("status IN ('pending','processing')"),
        )

    op.create_table(
        "app_features",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("feature_key", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("markup_bps", sa.Integer(), nullable=True),
        sa.Column("channel_share_bps", sa.Integer(), nullable=True),
        sa.Column("explicit_gateway_fee_units", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("pricing_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "channel_share_bps IS NULL OR channel_share_bps BETWEEN 0 AND 10000",
            name=op.f("ck_app_features_share_bps"),
        ),
        sa.CheckConstraint("explicit_gateway_fee_units >= 0", name=op.f("ck_app_features_fee")),
        sa.CheckConstraint("markup_bps IS NULL OR markup_bps >= 0", name=op.f("ck_app_features_markup_bps")),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_app_features_app_id_apps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_features")),
        sa.UniqueConstraint("app_id", "feature_key", name="uq_app_features_app_feature"),
    )
    op.create_table(
        "end_users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("external_user_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_end_users_app_id_apps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_end_users")),
        sa.UniqueConstraint("app_id", "external_user_hash", name="uq_end_users_app_external"),
    )
    op.create_table(
        "stripe_topups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("checkout_session_id", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("end_user_id", sa.String(length=36), nullable=False),
        sa.Column("amount_units", sa.BigInteger(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="usd", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("checkout_url", sa.Text(), nullable=True),
        sa.Column("transaction_id", sa.String(length=36), nullable=True),
        sa.Column("last_event_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("credited_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending','credited','failed','expired')", name=op.f("ck_stripe_topups_status")),
        sa.CheckConstraint("amount_units > 0 AND amount_cents > 0", name=op.f("ck_stripe_topups_positive")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_stripe_topups_account_id_accounts")),
        sa.ForeignKeyConstraint(["end_user_id"], ["end_users.id"], name=op.f("fk_stripe_topups_end_user_id_end_users")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_stripe_topups_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_topups")),
        sa.UniqueConstraint("checkout_session_id", name=op.f("uq_stripe_topups_checkout_session_id")),
    )
    with op.batch_alter_table("stripe_topups", schema=None) as batch_op:
        batch_op.create_index("ix_stripe_topups_end_user", ["end_user_id", "created_at"], unique=False)

    op.create_table(
        "usage_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("public_app_id", sa.String(length=64), nullable=False),
        sa.Column("end_user_id", sa.String(length=36), nullable=False),
        sa.Column("feature_key", sa.String(length=64), nullable=False),
        sa.Column("route_mode", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_tokens", sa.BigInteger(), nullable=False),
        sa.Column("upstream_cost_units", sa.BigInteger(), nullable=False),
        sa.Column("retail_price_units", sa.BigInteger(), nullable=False),
        sa.Column("channel_revenue_units", sa.BigInteger(), nullable=False),
        sa.Column("platform_revenue_units", sa.BigInteger(), nullable=False),
        sa.Column("gateway_fee_units", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rating_snapshot", sa.JSON(), nullable=False),
        sa.Column("transaction_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "route_mode IN ('platform','developer_key','byok','local')",
            name=op.f("ck_usage_events_route_mode"),
        ),
        sa.CheckConstraint(
            "retail_price_units = upstream_cost_units + channel_revenue_units + platform_revenue_units",
            name=op.f("ck_usage_events_parts_sum"),
        ),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_usage_events_app_id_apps")),
        sa.ForeignKeyConstraint(["end_user_id"], ["end_users.id"], name=op.f("fk_usage_events_end_user_id_end_users")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_usage_events_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
        sa.UniqueConstraint("request_id", name=op.f("uq_usage_events_request_id")),
    )
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.create_index("ix_usage_events_app_created", ["app_id", "created_at"], unique=False)
        batch_op.create_index("ix_usage_events_created", ["created_at"], unique=False)

    op.create_table(
        "user_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("end_user_id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("feature_key", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_user_sessions_app_id_apps")),
        sa.ForeignKeyConstraint(["end_user_id"], ["end_users.id"], name=op.f("fk_user_sessions_end_user_id_end_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_sessions_token_hash")),
    )
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_table("user_sessions")
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_events_created")
        batch_op.drop_index("ix_usage_events_app_created")

    op.drop_table("usage_events")
    with op.batch_alter_table("stripe_topups", schema=None) as batch_op:
        batch_op.drop_index("ix_stripe_topups_end_user")

    op.drop_table("stripe_topups")
    op.drop_table("end_users")
    op.drop_table("app_features")
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_payouts_open_per_developer",
            postgresql_where=sa.text("status IN ('pending','processing')"),
            sqlite_where=sa.text("status IN ('pending','processing')"),
        )
        batch_op.drop_index("ix_payouts_status_created")

    op.drop_table("payouts")
    with op.batch_alter_table("ledger_postings", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_postings_transaction")
        batch_op.drop_index("ix_ledger_postings_account")

    op.drop_table("ledger_postings")
    op.drop_table("apps")
    with op.batch_alter_table("adjustments", schema=None) as batch_op:
        batch_op.drop_index("ix_adjustments_account")

    op.drop_table("adjustments")
    op.drop_table("stripe_events")
    with op.batch_alter_table("provider_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_provider_keys_owner")

    op.drop_table("provider_keys")
    op.drop_table("model_prices")
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transactions_reference")

    op.drop_table("ledger_transactions")
    op.drop_table("idempotency_keys")
    op.drop_table("developers")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_resource")

    op.drop_table("audit_log")
    op.drop_table("accounts")


def _create_append_only_triggers() -> None:
    """Invariant 5: no UPDATE or DELETE ever touches a ledger row, whoever asks."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION modelfaucet_refuse_ledger_change() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'ledger rows are append-only (% on %)', TG_OP, TG_TABLE_NAME;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        for table in APPEND_ONLY_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION modelfaucet_refuse_ledger_change()"
            )
    else:
        for table in APPEND_ONLY_TABLES:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'ledger rows are append-only'); END"
                )


def _drop_append_only_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS modelfaucet_refuse_ledger_change()")
    else:
        for table in APPEND_ONLY_TABLES:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
