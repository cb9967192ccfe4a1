"""``modelfaucet``: serve, db upgrade, seed, reconcile, and the subcommands of the modules beside it."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

from .. import __version__
from ..logs import configure_logging
from ..services.context import ServiceContext
from .audit import audit_app
from .context import open_context, plural, refuse, require_migrated, settings_or_exit
from .replay import stripe_app
from .reports import reports_command
from .secrets import secrets_app
from .stripe_sync import add_stripe_sync_commands

app = typer.Typer(
    help="ModelFaucet billing and settlement service.",
    no_args_is_help=True,
    add_completion=False,
    # Plain help: the rich renderer shows a flag as "--demo <bool>", as if it took a value.
    rich_markup_mode=None,
    # A traceback's local variables could hold settings (a database password).
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(stripe_app, name="stripe")
add_stripe_sync_commands(stripe_app)
app.add_typer(audit_app, name="audit")
app.add_typer(secrets_app, name="secrets")
app.command("reports")(reports_command)

log = logging.getLogger("modelfaucet")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"modelfaucet {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    _version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_print_version),
    ] = False,
) -> None:
    """ModelFaucet billing and settlement service."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default PORT, 3001).")] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="A flag: write the demo data (as `modelfaucet seed` does) before serving.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes (default MODELFAUCET_WORKERS, 1); several need PostgreSQL "
            "and share the port by SO_REUSEPORT (production: about one per core).",
        ),
    ] = None,
) -> None:
    """Run the API (migrates an empty embedded database first).

    The port is bound before anything is written or announced; SIGTERM drains the requests
    in flight and the usage queue, then exits 0.
    """
    from ..http import server

    settings = settings_or_exit()
    configure_logging(settings)
    for warning in settings.warnings():
        log.warning(warning)
    ctx = open_context(settings)
    require_migrated(ctx)
    workers = workers or settings.workers
    if workers > 1 and ctx.db.is_sqlite:
        typer.echo("several workers need PostgreSQL; serving with one", err=True)
        workers = 1
    bind_host = host or settings.host
    bind_port = port or settings.port
    try:
        sockets = server.listen_all(bind_host, bind_port, workers)
    except server.ListenError as exc:
        ctx.db.dispose()
        refuse(str(exc))
    if demo:
        _print_seed(ctx)
    ctx.db.dispose()
    typer.echo(f"ModelFaucet listening on http://{bind_host}:{bind_port} (docs at /docs)")
    if not server.run(settings, sockets, workers=workers):
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to DATABASE_URL and name them."""
    ctx = open_context(settings_or_exit())
    applied = ctx.db.upgrade()
    ctx.db.dispose()
    if applied:
        typer.echo(f"applied {plural(len(applied), 'migration')}:")
        for migration in applied:
            typer.echo(f"  {migration}")
        typer.echo("the database is at the latest migration")
    else:
        typer.echo("nothing to apply: the database is at the latest migration")


@app.command()
def seed() -> None:
    """Write the demo data (idempotent) and print its ids."""
    ctx = open_context(settings_or_exit())
    require_migrated(ctx)
    _print_seed(ctx)
    ctx.db.dispose()


@app.command()
def reconcile(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Print the reconciliation report; exit 1 on any mismatch or failed check."""
    from ..domain.reconciliation import RunSource
    from ..services.reconcile import reconcile_ledger

    # read_only: a missing SQLite file is refused, not created; the run still stores its
    # one-row result, which the service's metrics show.
    ctx = open_context(settings_or_exit(), read_only=True)
    require_migrated(ctx)
    report = reconcile_ledger(ctx, source=RunSource.CLI)
    ctx.db.dispose()
    body = report.as_dict()
    if as_json:
        typer.echo(json.dumps(body, indent=2))
    else:
        summary = body["summary"]
        typer.echo(
            f"wallets: {summary['wallet_count']}  balanced: {summary['balanced_count']}  "
            f"mismatch: {summary['mismatch_count']}"
        )
        for item in body["items"]:
            typer.echo(
                f"  {item['status']:<9} {item['owner_scope']:<13} {item['owner_id']:<38} "
                f"wallet {item['wallet_balance_usd']:>20}  ledger {item['ledger_balance_usd']:>20}  "
                f"delta {item['delta_usd']}"
            )
        for name, check in body["checks"].items():
            mark = "ok  " if check["ok"] else "FAIL"
            typer.echo(f"  [{mark}] {name}: {check['description']}")
            for offending in check["offending"][:10]:
                typer.echo(f"         {json.dumps(offending)}")
    if not report.ok:
        raise typer.Exit(1)


def _print_seed(ctx: ServiceContext) -> None:
    from ..services.seed import seed_demo_data

    result = seed_demo_data(ctx)
    typer.echo("demo data " + ("written" if result.created_opening_balance else "already present"))
    for key, value in vars(result).items():
        if key != "created_opening_balance":
            typer.echo(f"  {key}: {value}")


def main() -> None:
    app()
