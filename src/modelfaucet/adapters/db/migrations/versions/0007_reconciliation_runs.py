"""Reconciliation runs (issue 19)

``reconciliation_runs``: one row per finished reconciliation run — when, who ran it
(``api``, ``cli``, ``periodic``, ``other``), how many problems it found and a one-line
summary — so the service's metrics show the newest run even when another process (the
CLI) made it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 19:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mismatches", sa.Integer(), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.CheckConstraint("source IN ('api','cli','periodic','other')", name=op.f("ck_reconciliation_runs_source")),
        sa.CheckConstraint("mismatches >= 0", name=op.f("ck_reconciliation_runs_mismatches_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_runs")),
    )
    op.create_index("ix_reconciliation_runs_finished", "reconciliation_runs", ["finished_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_reconciliation_runs_finished", table_name="reconciliation_runs")
    op.drop_table("reconciliation_runs")
