"""Connection settings that correctness and failure behaviour rely on, per engine."""

from __future__ import annotations

from sqlalchemy import text

from modelfaucet.adapters.db.database import Database


def test_connections_are_configured_for_the_ledger(database: Database, engine_name: str) -> None:
    with database.engine.connect() as conn:
        if engine_name == "sqlite":
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        else:
            dsn = conn.connection.driver_connection.info.dsn  # type: ignore[union-attr]
            # A silently dead database fails requests within seconds (keepalives, user timeout).
            for setting in ("keepalives=1", "tcp_user_timeout=15000", "connect_timeout=5"):
                assert setting in dsn
