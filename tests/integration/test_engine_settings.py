"""Connection settings that correctness and failure behaviour rely on, per engine."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import text

from modelfaucet.adapters.db import engine as engine_module
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


def _backend_pid(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_that_died_idle_in_the_pool_is_replaced_unseen(
    database: Database, engine_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ended a pooled connection while the pool was quiet (a restart, an idle
    timeout): the next checkout pings it, finds it dead and hands out a fresh one."""
    if engine_name != "postgresql":
        pytest.skip("SQLite has no server to lose")
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    dead = _backend_pid(database)
    # Another client (not from the pool) ends it.
    url = database.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", (dead,)).fetchone() == (True,)
    time.sleep(0.2)  # the server closes the socket
    with database.engine.connect() as conn:  # the dead one comes back first (LIFO pool)
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != dead


def counted_pings(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The connections the engine pings from now on (each ping still runs)."""
    pings: list[object] = []
    real_ping = engine_module._ping

    def counting_ping(dbapi_connection: object) -> None:
        pings.append(dbapi_connection)
        real_ping(dbapi_connection)

    monkeypatch.setattr(engine_module, "_ping", counting_ping)
    return pings


def test_a_connection_back_in_the_pool_a_moment_ago_is_not_pinged(
    database: Database, engine_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usage engine checks out twice per batch, milliseconds after the last checkin:
    no round trip for a ping then; after PING_AFTER_IDLE_SECONDS of rest, one."""
    if engine_name != "postgresql":
        pytest.skip("only PostgreSQL connections are pinged")
    pings = counted_pings(monkeypatch)
    _backend_pid(database)  # the pool holds a connection, checked in just now
    pings.clear()
    for _ in range(5):
        _backend_pid(database)
    assert pings == []
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.05)
    time.sleep(0.1)
    _backend_pid(database)
    assert len(pings) == 1


def test_a_connection_opened_for_its_checkout_is_not_pinged(
    database: Database, engine_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection made for this checkout has just answered the server's handshake: no
    ping round trip before its first use, even with every pooled connection pinged."""
    if engine_name != "postgresql":
        pytest.skip("only PostgreSQL connections are pinged")
    pings = counted_pings(monkeypatch)
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    database.engine.dispose()  # the next checkout connects anew
    _backend_pid(database)
    assert pings == []
    _backend_pid(database)  # pooled now, rested past the (zero) limit: pinged
    assert len(pings) == 1
