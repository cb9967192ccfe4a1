"""developer tokens, and the indexes statements and developer reads need (SPEC §17, §19)

- ``developer_tokens``: a developer's bearer tokens, stored only as SHA-256 hashes.
- ``ix_ledger_postings_account_created``: one wallet's postings by creation time, with the
  amount carried along (PostgreSQL), so a statement or an as-of balance reads a range of
  one wallet's postings however many other wallets hold.
- ``ix_payouts_developer_created``: a developer's payouts, newest first.

A large ledger: building the postings index blocks writes to ``ledger_postings`` while it
runs. On PostgreSQL, build it beforehand without blocking —
``CREATE INDEX CONCURRENTLY ix_ledger_postings_account_created ON ledger_postings
(account_id, created_at, id) INCLUDE (amount_units)`` — and this migration keeps it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "developer_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("developer_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["developer_id"], ["developers.id"], name=op.f("fk_developer_tokens_developer_id_developers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_developer_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_developer_tokens_token_hash")),
    )
    op.create_index("ix_developer_tokens_developer", "developer_tokens", ["developer_id", "created_at"])
    op.create_index(
        "ix_ledger_postings_account_created",
        "ledger_postings",
        ["account_id", "created_at", "id"],
        postgresql_include=["amount_units"],
        if_not_exists=True,
    )
    op.create_index("ix_payouts_developer_created", "payouts", ["developer_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_payouts_developer_created", table_name="payouts")
    op.drop_index("ix_ledger_postings_account_created", table_name="ledger_postings")
    op.drop_index("ix_developer_tokens_developer", table_name="developer_tokens")
    op.drop_table("developer_tokens")
