"""The database handle services use: one engine, a write transaction, a read transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table, text
from sqlalchemy.dialects import postgresql, sqlite

from . import migrate
from .engine import is_sqlite, make_engine, read_connection


class Database:
    """Owns the engine. ``transaction()`` commits all of a request's rows or none."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name

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

    def is_migrated(self) -> bool:
        try:
            return migrate.is_up_to_date(self.engine)
        except Exception:
            return False

    def upgrade(self) -> None:
        migrate.upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def url_is_sqlite(url: str) -> bool:
    return is_sqlite(url)
