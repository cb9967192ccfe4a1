"""Tampering with the audit log as a database owner would: past its triggers.

Migration 0008 refuses deletes and changes to chained audit rows. Someone who owns the
database can still get past that (disable or drop the triggers); the hash chain is what
catches them. ``bypass_audit_guards`` lets a test be that someone, inside one transaction:
on PostgreSQL the triggers are disabled and enabled again, on SQLite dropped and
re-created from their stored SQL (both transactional DDL).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text

from modelfaucet.adapters.db.database import Database


@contextmanager
def bypass_audit_guards(db: Database) -> Iterator[Connection]:
    with db.transaction() as conn:
        if db.is_postgres:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            yield conn
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
            return
        triggers = conn.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'")
        ).all()
        assert {name for name, _ in triggers} == {"audit_log_no_delete", "audit_log_chain_once"}
        for name, _ in triggers:
            conn.execute(text(f"DROP TRIGGER {name}"))
        yield conn
        for _, sql in triggers:
            conn.execute(text(sql))
