"""web sessions of the operator console and the developer portal (SPEC §21)

- ``web_sessions``: one row per signed-in browser. The session id lives only in the
  browser's cookie; the row holds its SHA-256 (``id_hash``), who signed in
  (``principal`` ``operator`` or ``developer`` and ``subject``, the operator's name or the
  developer's id), the session's CSRF secret, and when it was created, last seen and
  ends at the latest. Signing out deletes the row.

Revision ID: 0011
Revises: 0006
Create Date: 2026-11-24 19:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("principal", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("csrf_secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("principal IN ('operator', 'developer')", name=op.f("ck_web_sessions_principal")),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_web_sessions")),
    )
    op.create_index("ix_web_sessions_last_seen", "web_sessions", ["last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_web_sessions_last_seen", table_name="web_sessions")
    op.drop_table("web_sessions")
