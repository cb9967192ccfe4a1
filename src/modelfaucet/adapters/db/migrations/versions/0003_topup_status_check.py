"""top-up status CHECK lists exactly TopupStatus: drop the never-written 'expired'

The first release's CHECK allowed 'expired', which no code writes (an expired Checkout
session marks its top-up failed). The schema's status lists are now built from the domain
enums and a test compares the migrated constraints with them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 16:20:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stripe_topups") as batch:
        batch.drop_constraint(op.f("ck_stripe_topups_status"), type_="check")
        batch.create_check_constraint(op.f("ck_stripe_topups_status"), "status IN ('pending','credited','failed')")


def downgrade() -> None:
    with op.batch_alter_table("stripe_topups") as batch:
        batch.drop_constraint(op.f("ck_stripe_topups_status"), type_="check")
        batch.create_check_constraint(
            op.f("ck_stripe_topups_status"), "status IN ('pending','credited','failed','expired')"
        )
