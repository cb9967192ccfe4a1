"""A database migrated only up to an older revision, for tests of a later migration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from modelfaucet.adapters.db import migrate
from modelfaucet.adapters.db.engine import make_engine


@contextmanager
def database_at(db_url: str, tmp_path: Path, revision: str) -> Iterator[str]:
    """The URL of an empty database migrated up to ``revision``: a SQLite file in
    ``tmp_path``, or on PostgreSQL a database of its own beside the run's (dropped after)."""
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / f'at_{revision}.sqlite3'}"
        engine = make_engine(url)
        migrate.upgrade(engine, revision)
        engine.dispose()
        yield url
        return
    base = make_url(db_url)
    name = f"{base.database}_at{revision}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine, revision)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
