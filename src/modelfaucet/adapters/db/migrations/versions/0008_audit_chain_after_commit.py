"""audit chain after commit: chain position, unchained rows, chain-once triggers

Audit rows are now inserted unchained in the business transaction and chained after
commit by one chainer at a time (``adapters/db/audit.py``). ``chain_seq`` is a row's
position in the chain (1, 2, …, gapless; NULL until chained); the chain is walked in that
order, no longer in id order, because on PostgreSQL ids are taken before commit and a
row with a smaller id can commit after one with a larger id.

Existing rows were chained in id order by the old writer: they get ``chain_seq`` = their
rank by id, so the old chain verifies unchanged.

Triggers (both engines) make the log append-only in the sense the chain needs: no row is
deleted; a chained row never changes; an unchained row may only receive its chain
position and hashes, once, with every content column unchanged.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 19:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CONTENT_COLUMNS = (
    "id",
    "created_at",
    "actor",
    "action",
    "resource_type",
    "resource_id",
    "before_status",
    "after_status",
    "amount_units",
    "note",
    "request_id",
)


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("chain_seq", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE audit_log SET chain_seq = ranked.n FROM "
        "(SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM audit_log WHERE row_hash IS NOT NULL) AS ranked "
        "WHERE audit_log.id = ranked.id"
    )
    op.create_index("uq_audit_log_chain_seq", "audit_log", ["chain_seq"], unique=True)
    op.create_index(
        "ix_audit_log_unchained",
        "audit_log",
        ["id"],
        postgresql_where=sa.text("chain_seq IS NULL"),
        sqlite_where=sa.text("chain_seq IS NULL"),
    )
    _create_triggers()


def downgrade() -> None:
    _drop_triggers()
    op.drop_index("ix_audit_log_unchained", table_name="audit_log")
    op.drop_index("uq_audit_log_chain_seq", table_name="audit_log")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("chain_seq")


def _create_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        new = ", ".join([f"NEW.{c}" for c in CONTENT_COLUMNS] + ["NEW.details::text"])
        old = ", ".join([f"OLD.{c}" for c in CONTENT_COLUMNS] + ["OLD.details::text"])
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION modelfaucet_audit_log_chain_once() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    RAISE EXCEPTION 'audit_log rows are append-only (DELETE of row %)', OLD.id;
                END IF;
                IF OLD.chain_seq IS NOT NULL THEN
                    RAISE EXCEPTION 'audit_log row % is chained and cannot change', OLD.id;
                END IF;
                IF NEW.chain_seq IS NULL OR NEW.prev_hash IS NULL OR NEW.row_hash IS NULL
                   OR ROW({new}) IS DISTINCT FROM ROW({old}) THEN
                    RAISE EXCEPTION 'unchained audit_log row % may only receive its chain position and hashes', OLD.id;
                END IF;
                RETURN NEW;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION modelfaucet_audit_log_chain_once()"
        )
    else:
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in (*CONTENT_COLUMNS, "details"))
        op.execute(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log rows are append-only'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_log_chain_once BEFORE UPDATE ON audit_log "
            "WHEN OLD.chain_seq IS NOT NULL OR NEW.chain_seq IS NULL OR NEW.prev_hash IS NULL "
            f"OR NEW.row_hash IS NULL OR {changed} "
            "BEGIN SELECT RAISE(ABORT, 'audit_log: a chained row cannot change; an unchained row "
            "may only receive its chain position and hashes'); END"
        )


def _drop_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS modelfaucet_audit_log_chain_once()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        op.execute("DROP TRIGGER IF EXISTS audit_log_chain_once")
