"""``modelfaucet``: serve, db upgrade, seed, reconcile (SPEC §16)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Annotated

import typer

from ..config import Settings
from ..services.context import ServiceContext
from .audit import audit_app
from .context import open_context, require_migrated, settings_or_exit
from .replay import stripe_app
from .reports import reports_command
from .secrets import secrets_app
from .stripe_sync import add_stripe_sync_commands

app = typer.Typer(help="ModelFaucet billing and settlement service.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(stripe_app, name="stripe")
add_stripe_sync_commands(stripe_app)
app.add_typer(audit_app, name="audit")
app.add_typer(secrets_app, name="secrets")
app.command("reports")(reports_command)

log = logging.getLogger("modelfaucet")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (PORT).")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Write the demo data (seed) before serving.")] = False,
    workers: Annotated[int, typer.Option(help="Worker processes (PostgreSQL only).")] = 1,
) -> None:
    """Run the API (migrates an empty embedded database first)."""
    import uvicorn

    from ..http.app import create_app

    settings = settings_or_exit()
    _configure_logging(settings)
    for warning in settings.warnings():
        log.warning(warning)
    ctx = open_context(settings)
    require_migrated(ctx)
    if demo:
        _print_seed(ctx)
    ctx.db.dispose()
    if workers > 1 and ctx.db.is_sqlite:
        typer.echo("several workers need PostgreSQL; serving with one", err=True)
        workers = 1
    bind_host = host or settings.host
    bind_port = port or settings.port
    # X-Forwarded-For/-Proto only from the configured proxies; uvicorn would otherwise
    # believe them from 127.0.0.1 by default, letting any local caller pick its address.
    proxy_headers = bool(settings.forwarded_allow_ips)
    forwarded_allow_ips = list(settings.forwarded_allow_ips) or None
    typer.echo(f"ModelFaucet listening on http://{bind_host}:{bind_port} (docs at /docs)")
    if workers > 1:
        uvicorn.run(
            "modelfaucet.http.asgi:app",
            host=bind_host,
            port=bind_port,
            workers=workers,
            log_level="warning",
            proxy_headers=proxy_headers,
            forwarded_allow_ips=forwarded_allow_ips,
        )
        return
    uvicorn.run(
        create_app(settings),
        host=bind_host,
        port=bind_port,
        log_level="warning",
        access_log=False,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations to DATABASE_URL."""
    ctx = open_context(settings_or_exit())
    ctx.db.upgrade()
    typer.echo("database is at the latest migration")


@app.command()
def seed() -> None:
    """Write the demo data (idempotent) and print its ids."""
    ctx = open_context(settings_or_exit())
    require_migrated(ctx)
    _print_seed(ctx)


@app.command()
def reconcile(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Print the reconciliation report; exit 1 on any mismatch or failed check."""
    from ..services.reconcile import reconcile_ledger

    ctx = open_context(settings_or_exit())
    require_migrated(ctx)
    report = reconcile_ledger(ctx)
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


def _configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.production:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # Migration chatter on every start-up buries the lines an operator needs.
    logging.getLogger("alembic").setLevel(logging.WARNING)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        return json.dumps(entry)


def main() -> None:
    app()
