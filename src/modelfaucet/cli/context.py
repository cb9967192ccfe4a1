"""What every command needs before it calls a service: the settings, a context, a migrated database.

The subcommand modules and :mod:`modelfaucet.cli.main` all import from here, never from
each other, so the command line has no import circle.
"""

from __future__ import annotations

import typer

from ..adapters.db.database import Database
from ..config import ConfigError, Settings, load_settings
from ..services.context import ServiceContext

EXIT_USAGE = 2


def settings_or_exit() -> Settings:
    """The settings from the environment; a configuration error exits 2 with its message."""
    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def open_context(settings: Settings) -> ServiceContext:
    """A service context on ``settings.database_url`` (the caller disposes of ``ctx.db``)."""
    return ServiceContext(db=Database.from_url(settings.database_url), settings=settings)


def require_migrated(ctx: ServiceContext) -> None:
    """Migrate an embedded SQLite database; refuse (exit 2) a PostgreSQL one that is behind."""
    if not ctx.db.is_migrated():
        if ctx.db.is_sqlite:
            ctx.db.upgrade()
            return
        typer.echo("the database is not migrated: run `modelfaucet db upgrade` first", err=True)
        raise typer.Exit(EXIT_USAGE)
