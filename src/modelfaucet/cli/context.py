"""What every command needs before it calls a service: the settings, a context, a migrated database.

The subcommand modules and :mod:`modelfaucet.cli.main` all import from here, never from
each other, so the command line has no import circle.

Exit codes, the same for every command: 0 done; 1 the command ran and found a problem (a
reconciliation mismatch, a broken audit chain); 2 it could not run — bad arguments or
configuration, a database that cannot be reached, does not exist or is not migrated. Every
refusal is one line on stderr, never a traceback, never a password.
"""

from __future__ import annotations

from typing import NoReturn

import typer

from ..adapters.db.database import Database, DatabaseUnavailable
from ..adapters.db.engine import sqlite_file
from ..config import ConfigError, Settings, load_settings
from ..services.context import ServiceContext

EXIT_USAGE = 2


def refuse(message: str) -> NoReturn:
    """One line on stderr, exit 2: the command could not run."""
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_USAGE)


def settings_or_exit() -> Settings:
    """The settings from the environment; a configuration error exits 2 with its message."""
    try:
        return load_settings()
    except ConfigError as exc:
        refuse(f"configuration error: {exc}")


def open_context(settings: Settings, *, read_only: bool = False) -> ServiceContext:
    """A service context on ``settings.database_url`` (the caller disposes of ``ctx.db``).

    The database is reached once first, so a wrong host, port or database name is named
    here (exit 2) instead of failing deep inside a command. ``read_only``: the command only
    reads, so a SQLite file that does not exist is refused rather than created empty (run in
    the wrong directory, it would otherwise report on nothing and say "ok").
    """
    path = sqlite_file(settings.database_url)
    if read_only and path is not None and not path.exists():
        refuse(
            f"no database at {path}: set DATABASE_URL, or run this where `modelfaucet serve` or "
            "`modelfaucet db upgrade` created it"
        )
    database = Database.from_url(settings.database_url)
    try:
        database.check_available()
    except DatabaseUnavailable as exc:
        database.dispose()
        refuse(str(exc))
    return ServiceContext(db=database, settings=settings)


def require_migrated(ctx: ServiceContext) -> None:
    """Migrate an embedded SQLite database; refuse (exit 2) a PostgreSQL one that is behind."""
    if not ctx.db.is_migrated():
        if ctx.db.is_sqlite:
            ctx.db.upgrade()
            return
        ctx.db.dispose()
        refuse("the database is not migrated: run `modelfaucet db upgrade` first")


def plural(count: int, noun: str) -> str:
    """``1 row``, ``2 rows``."""
    return f"{count} {noun if count == 1 else noun + 's'}"
