"""Apply and inspect Alembic migrations programmatically."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_up_to_date(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def pending_migrations(engine: Engine) -> list[str]:
    """The migrations ``upgrade`` would apply, oldest first, as "0002 what it does"."""
    scripts = ScriptDirectory.from_config(alembic_config())
    current = current_revision(engine)
    pending = list(scripts.iterate_revisions("heads", current))
    return [f"{script.revision} {script.doc}".rstrip() for script in reversed(pending)]


def upgrade(engine: Engine, revision: str = "head") -> list[str]:
    """Apply the pending migrations in one transaction; return what was applied (oldest first)."""
    applied = pending_migrations(engine) if revision == "head" else []
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return applied
