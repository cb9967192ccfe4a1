"""Engines for PostgreSQL and embedded SQLite, configured for the ledger's needs.

SQLite runs in WAL mode; every write transaction starts with ``BEGIN IMMEDIATE`` so two
writers never deadlock upgrading a read lock, and waits (busy timeout) instead of failing.
Read-only work (reports, reconciliation) may open a deferred transaction so it does not
block writers: pass ``read_only=True`` to :func:`read_connection`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.pool import NullPool

SQLITE_BUSY_TIMEOUT_MS = 30_000

# A database that stops answering without resetting the connection (a dead host, a silent
# network) must fail requests within seconds, not after the kernel's TCP timeouts: libpq
# keepalives notice an idle dead peer, tcp_user_timeout bounds unacknowledged writes.
POSTGRES_CONNECT_ARGS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
    # No server-side prepared statements for the application's own queries: each is sent
    # unnamed and planned for the values at hand. psycopg would otherwise prepare a statement
    # after five executions, and PostgreSQL may then keep ONE generic plan for the
    # connection's life; planned while a table is empty (a fresh or truncated database) that
    # plan is a sequential scan that nothing replaces until the table is analysed, and the
    # usage batch's duplicate check slowed 4-5x as usage_events grew. (The earlier fix,
    # ``plan_cache_mode=force_custom_plan`` for the whole session, also re-planned every
    # foreign-key check of every inserted row and halved COPY's throughput.)
    "prepare_threshold": None,
}
DEFERRED_OPTION = "modelfaucet_deferred"
# A pooled PostgreSQL connection is pinged (one round trip) at checkout only when it sat in
# the pool longer than this. The usage engine checks a connection out twice per batch, a
# few milliseconds after checking it in, and the ping was about 5 % of a batch's time
# (issue 16); a connection idle for longer, the case the ping is for (a server restarted or
# a network cut while the pool was quiet), is still pinged and replaced if dead.
PING_AFTER_IDLE_SECONDS = 1.0


def normalise_url(url: str) -> str:
    """Map ``postgresql://`` / ``postgres://`` onto the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(url: str) -> bool:
    return normalise_url(url).startswith("sqlite")


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL or an in-memory database."""
    if not is_sqlite(url):
        return None
    database = make_url(normalise_url(url)).database or ""
    if database in {"", ":memory:"} or database.startswith("file:"):
        return None
    return Path(database)


def shown_url(url: str) -> str:
    """The URL as messages may show it: the password masked, no driver name."""
    try:
        parsed = make_url(normalise_url(url))
        return parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=True)
    except ArgumentError:
        return "DATABASE_URL"


def unavailable_reason(error: BaseException) -> str:
    """Why a connection attempt failed, in the driver's words, without the URL.

    libpq says "connection to server at "h", port p failed: FATAL:  database "x" does not
    exist" or "...: Connection refused\n\tIs the server running...": keep the part after the
    last "failed:" on its first line. Driver messages never contain the password.
    """
    text = str(getattr(error, "orig", None) or error).strip()
    if "failed: " in text:
        text = text.rsplit("failed: ", 1)[1]
    first_line = text.splitlines()[0] if text else type(error).__name__
    return first_line.removeprefix("FATAL:").strip()


def make_engine(url: str, *, pool_size: int = 10, poolclass: Any = None) -> Engine:
    url = normalise_url(url)
    if is_sqlite(url):
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if poolclass is not None:
            kwargs["poolclass"] = poolclass
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs = {"connect_args": dict(POSTGRES_CONNECT_ARGS)}
    if poolclass is NullPool:
        kwargs["poolclass"] = NullPool
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size * 2, pool_timeout=10)
    engine = create_engine(url, **kwargs)
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: Engine) -> None:
    """SQLAlchemy's ``pool_pre_ping``, but only for a connection idle past
    :data:`PING_AFTER_IDLE_SECONDS` (or one psycopg already knows is closed or broken): a
    dead one raises :class:`DisconnectionError` at checkout, and the pool replaces it with
    a fresh connection before the caller sees anything. A connection that dies while busy
    fails its statement, and SQLAlchemy then invalidates every connection of the pool."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if dbapi_connection.closed or dbapi_connection.broken:
            raise DisconnectionError("the connection is closed")
        checked_in_at = record.info.get("checked_in_at")
        # Never checked in: connected just now for this checkout (the info dictionary lives
        # as long as the driver connection), so it has answered already.
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            _ping(dbapi_connection)
        except Exception as exc:  # any failure: throw this connection away, take another
            raise DisconnectionError("the connection did not answer a ping") from exc


def _ping(dbapi_connection: Any) -> None:
    """One round trip on a pooled psycopg connection, left idle."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    dbapi_connection.rollback()


def _configure_sqlite(engine: Engine) -> None:
    database = make_url(str(engine.url)).database or ""
    in_memory = database in {"", ":memory:"}

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(DEFERRED_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def read_connection(engine: Engine, *, snapshot: bool = False) -> Iterator[Connection]:
    """A connection for read-only work; on SQLite it does not take the write lock.

    ``snapshot=True``: every statement sees the same snapshot (REPEATABLE READ, read-only on
    PostgreSQL; a WAL read transaction on SQLite already does), so a report built from
    several queries never mixes two moments of a ledger that is being written.
    """
    with engine.connect() as raw:
        options: dict[str, Any] = {DEFERRED_OPTION: True}
        if snapshot and engine.dialect.name == "postgresql":
            options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        connection = raw.execution_options(**options)
        with connection.begin():
            yield connection
