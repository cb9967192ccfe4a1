"""app secret keys: an app's backend mints end-user sessions with one (SPEC §4)

Only the SHA-256 of a key is stored. Existing apps get no key: an operator issues one
(``POST /v1/admin/apps/{public_app_id}/secret-keys``) before their backends can open
sessions again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_secret_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_app_secret_keys_app_id_apps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_secret_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_app_secret_keys_key_hash")),
    )
    with op.batch_alter_table("app_secret_keys", schema=None) as batch_op:
        batch_op.create_index("ix_app_secret_keys_app", ["app_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("app_secret_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_app_secret_keys_app")
    op.drop_table("app_secret_keys")
