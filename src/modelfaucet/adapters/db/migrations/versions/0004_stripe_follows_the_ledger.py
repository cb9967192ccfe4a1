"""Stripe follows the ledger: refunds, disputes, sync runs and the offline provider's record

- ``stripe_topups.payment_intent_id``: refunds and disputes name the PaymentIntent, not the
  Checkout session; it is recorded when a top-up is credited (or by the next sync).
- ``stripe_reversals`` (one row per refunded charge or dispute) and
  ``stripe_reversal_postings`` (one row per ledger transaction they posted, unique per
  Stripe object, movement and amount).
- ``stripe_sync_runs``: each sync's window, counts and flagged rows.
- ``stripe_offline_sessions``: the offline test-mode provider's record of its sessions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("stripe_topups", sa.Column("payment_intent_id", sa.String(length=255), nullable=True))
    op.create_index("ix_stripe_topups_created", "stripe_topups", ["created_at"], unique=False)
    op.create_index("uq_stripe_topups_payment_intent", "stripe_topups", ["payment_intent_id"], unique=True)

    op.create_table(
        "stripe_reversals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("stripe_object_id", sa.String(length=255), nullable=False),
        sa.Column("topup_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("wallet_units", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("uncollected_units", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_event_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('refund','dispute')", name=op.f("ck_stripe_reversals_kind")),
        sa.CheckConstraint("status IN ('refunded','open','lost','won')", name=op.f("ck_stripe_reversals_status")),
        sa.CheckConstraint(
            "amount_cents >= 0 AND wallet_units >= 0 AND uncollected_units >= 0",
            name=op.f("ck_stripe_reversals_non_negative"),
        ),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_stripe_reversals_account_id_accounts")),
        sa.ForeignKeyConstraint(
            ["topup_id"], ["stripe_topups.id"], name=op.f("fk_stripe_reversals_topup_id_stripe_topups")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_reversals")),
        sa.UniqueConstraint("kind", "stripe_object_id", name="uq_stripe_reversals_object"),
    )
    op.create_index("ix_stripe_reversals_topup", "stripe_reversals", ["topup_id"], unique=False)

    op.create_table(
        "stripe_reversal_postings",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("reversal_id", sa.String(length=36), nullable=False),
        sa.Column("movement", sa.String(length=16), nullable=False),
        sa.Column("wallet_units", sa.BigInteger(), nullable=False),
        sa.Column("uncollected_units", sa.BigInteger(), nullable=False),
        sa.Column("amount_cents_after", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("transaction_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("movement IN ('debit','reverse')", name=op.f("ck_stripe_reversal_postings_movement")),
        sa.CheckConstraint(
            "wallet_units >= 0 AND uncollected_units >= 0 AND wallet_units + uncollected_units > 0",
            name=op.f("ck_stripe_reversal_postings_amounts"),
        ),
        sa.ForeignKeyConstraint(
            ["reversal_id"],
            ["stripe_reversals.id"],
            name=op.f("fk_stripe_reversal_postings_reversal_id_stripe_reversals"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_stripe_reversal_postings_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_reversal_postings")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_stripe_reversal_postings_transaction_id")),
        sa.UniqueConstraint("reversal_id", "movement", "amount_cents_after", name="uq_stripe_reversal_postings_once"),
    )

    op.create_table(
        "stripe_sync_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("flagged", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_sync_runs")),
    )
    op.create_index("ix_stripe_sync_runs_created", "stripe_sync_runs", ["created_at"], unique=False)

    op.create_table(
        "stripe_offline_sessions",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payment_status", sa.String(length=32), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("charge_id", sa.String(length=255), nullable=True),
        sa.Column("amount_refunded_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("dispute_id", sa.String(length=255), nullable=True),
        sa.Column("dispute_status", sa.String(length=32), nullable=True),
        sa.Column("dispute_amount_cents", sa.BigInteger(), nullable=True),
        sa.Column("session_metadata", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open','complete','expired')", name=op.f("ck_stripe_offline_sessions_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_offline_sessions")),
    )
    op.create_index("ix_stripe_offline_sessions_created", "stripe_offline_sessions", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_stripe_offline_sessions_created", table_name="stripe_offline_sessions")
    op.drop_table("stripe_offline_sessions")
    op.drop_index("ix_stripe_sync_runs_created", table_name="stripe_sync_runs")
    op.drop_table("stripe_sync_runs")
    op.drop_table("stripe_reversal_postings")
    op.drop_index("ix_stripe_reversals_topup", table_name="stripe_reversals")
    op.drop_table("stripe_reversals")
    op.drop_index("uq_stripe_topups_payment_intent", table_name="stripe_topups")
    op.drop_index("ix_stripe_topups_created", table_name="stripe_topups")
    with op.batch_alter_table("stripe_topups") as batch:
        batch.drop_column("payment_intent_id")
