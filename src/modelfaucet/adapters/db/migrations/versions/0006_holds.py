"""Authorization holds (SPEC §18)

``holds``: one row per hold (unique ``request_id``), its amount reserved on the end user's
wallet while ``held``; ``ended_at`` records when it was captured, released or expired, and
``capture_request_id`` which usage event captured it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 17:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holds",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("end_user_id", sa.String(length=36), nullable=False),
        sa.Column("amount_units", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("capture_request_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount_units > 0", name=op.f("ck_holds_positive")),
        sa.CheckConstraint("status IN ('held','captured','released','expired')", name=op.f("ck_holds_status")),
        sa.CheckConstraint("(status IN ('held')) = (ended_at IS NULL)", name=op.f("ck_holds_ended")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_holds_account_id_accounts")),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_holds_app_id_apps")),
        sa.ForeignKeyConstraint(["end_user_id"], ["end_users.id"], name=op.f("fk_holds_end_user_id_end_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
        sa.UniqueConstraint("request_id", name=op.f("uq_holds_request_id")),
    )
    op.create_index("ix_holds_open_by_account", "holds", ["account_id", "status", "expires_at"], unique=False)
    op.create_index("ix_holds_open_by_expiry", "holds", ["status", "expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_holds_open_by_expiry", table_name="holds")
    op.drop_index("ix_holds_open_by_account", table_name="holds")
    op.drop_table("holds")
