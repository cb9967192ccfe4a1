"""The database handle services use: one engine, a write transaction, a read transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from . import migrate
from .audit import BackgroundChainer
from .engine import is_sqlite, make_engine, read_connection, shown_url, unavailable_reason
from .ledger import SystemAccountIds


class DatabaseUnavailable(Exception):
    """The database cannot be reached or does not exist; the message says which (never a password)."""


class Database:
    """Owns the engine. ``transaction()`` commits all of a request's rows or none."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name
        # Ids of committed system accounts, for this process (a credit's Stripe clearing…).
        self.system_account_ids = SystemAccountIds()
        # The process's audit chainer, if it has one (the API process); else each unit of
        # work chains its own audit rows after it commits.
        self.audit_chainer: BackgroundChainer | None = None

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        return cls(make_engine(url, **kwargs))

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[Connection]:
        """A read-only transaction that does not block writers on SQLite; ``snapshot=True``
        makes all its statements see one consistent snapshot (see ``read_connection``)."""
        with read_connection(self.engine, snapshot=snapshot) as connection:
            yield connection

    def insert(self, table: Table) -> Any:
        """A dialect-specific INSERT that supports ``on_conflict_do_nothing``."""
        if self.is_postgres:
            return postgresql.insert(table)
        return sqlite.insert(table)

    def ping(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def check_available(self) -> None:
        """Connect once; raise :class:`DatabaseUnavailable` saying why not, if not."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except DBAPIError as exc:
            raise DatabaseUnavailable(describe_unavailable(str(self.engine.url), exc)) from None

    def is_migrated(self) -> bool:
        try:
            return migrate.is_up_to_date(self.engine)
        except Exception:
            return False

    def upgrade(self) -> list[str]:
        """Apply pending migrations; return the ones applied (empty: nothing was pending)."""
        return migrate.upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def url_is_sqlite(url: str) -> bool:
    return is_sqlite(url)


def describe_unavailable(url: str, error: BaseException) -> str:
    """ "database … does not exist" or "cannot connect to …: reason", the password masked."""
    reason = unavailable_reason(error)
    if reason.startswith("database ") and reason.endswith("does not exist"):
        return f"{reason} (on {shown_url(url)})"
    return f"cannot connect to {shown_url(url)}: {reason}"
