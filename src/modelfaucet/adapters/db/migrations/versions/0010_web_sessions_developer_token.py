"""a portal session remembers the developer token it was opened with

- ``web_sessions.developer_token_id``: the id of the developer token a ``developer``
  session was signed in with (NULL for ``operator`` sessions). Every request on a developer
  session joins it to ``developer_tokens`` (and ``developers``): a revoked token, or a
  developer no longer ``active``, ends the session at once.
- Developer sessions opened before this revision do not know their token, so nothing could
  tell whether it was revoked since: they are ended here (their rows deleted; the developer
  signs in again). The service also treats a developer row without a token id as ended.
  Operator sessions are kept.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 23:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM web_sessions WHERE principal = 'developer'")
    # Batch mode: SQLite adds a column with a foreign key only by rebuilding the table.
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("developer_token_id", sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_web_sessions_developer_token_id_developer_tokens"),
            "developer_tokens",
            ["developer_token_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_web_sessions_developer_token_id_developer_tokens"), type_="foreignkey")
        batch_op.drop_column("developer_token_id")
