"""``modelfaucet stripe sync`` and ``modelfaucet stripe simulate`` (SPEC §20).

``sync`` runs the three-way comparison (:mod:`modelfaucet.services.stripe_sync`) and prints
one row per Checkout session; it exits 1 when a row is flagged. ``simulate`` changes the
offline provider's state (:mod:`modelfaucet.services.stripe_simulate`) and, unless
``--no-webhook``, delivers Stripe's event, signed with ``STRIPE_WEBHOOK_SECRET`` when set,
to the running API — a local target only unless ``ALLOW_REMOTE_WEBHOOK_REPLAY=1``, checked
before anything changes.

Exit codes: 0 done, 1 something flagged (sync) or the webhook was refused or not delivered
(simulate), 2 bad arguments, a refused target or a refused simulation.
"""

from __future__ import annotations

import json
import os
import time
from typing import Annotated
from urllib.parse import urlsplit

import httpx
import typer

from ..adapters.netpolicy import is_local_target
from ..adapters.stripe.offline import SimulatedEvent, Simulation
from ..adapters.stripe.signature import secrets_from_setting, sign
from ..domain.outcomes import Refusal
from ..domain.timestamps import iso
from ..services.context import Actor, ServiceContext
from ..services.stripe_simulate import simulate_stripe
from ..services.stripe_sync import SyncReport, SyncStripe, as_item, parse_since, sync_stripe
from .context import open_context, require_migrated, settings_or_exit

DEFAULT_API_BASE_URL = "http://127.0.0.1:3001"
TIMEOUT_SECONDS = 15.0
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
CLI_ACTOR = "cli:stripe-sync"


def add_stripe_sync_commands(stripe_app: typer.Typer) -> None:
    """Register ``sync`` and ``simulate`` on the ``modelfaucet stripe`` group."""
    stripe_app.command("sync")(sync_command)
    stripe_app.command("simulate")(simulate_command)


def sync_command(
    *,
    since: Annotated[
        str | None, typer.Option(help="ISO-8601 start of the window (default: 7 days, or the oldest pending top-up).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Compare and report only; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as the API's JSON.")] = False,
) -> None:
    """Compare Stripe's Checkout sessions with the top-ups and the ledger; credit lost webhooks."""
    ctx = _context()
    try:
        command = SyncStripe(since=None if since is None else parse_since(since), dry_run=dry_run)
        report = sync_stripe(ctx, command, actor=Actor(name=CLI_ACTOR))
    except Refusal as exc:
        typer.echo(f"refused: {exc.message}", err=True)
        raise typer.Exit(EXIT_USAGE if exc.code == "invalid_request" else EXIT_FAILED) from None
    if as_json:
        typer.echo(json.dumps(_as_json(report), indent=2))
    else:
        _print_table(report)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


def simulate_command(
    action: Annotated[Simulation, typer.Argument(help="What happens to the session.")],
    checkout_session_id: Annotated[str, typer.Argument(help="The offline session (cs_test_…).")],
    *,
    amount_cents: Annotated[
        int | None, typer.Option(help="Refund or dispute amount in cents (default: the rest / the payment).")
    ] = None,
    no_webhook: Annotated[
        bool, typer.Option("--no-webhook", help="Change the state only: the webhook is lost.")
    ] = False,
    api_base_url: Annotated[
        str | None, typer.Option(help="API base URL (env MODELFAUCET_API_BASE_URL, default http://127.0.0.1:3001)")
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a non-local target (env ALLOW_REMOTE_WEBHOOK_REPLAY=1)")
    ] = False,
) -> None:
    """Make the offline Stripe pay, expire, refund or dispute a session, and send its webhook."""
    url = None
    if not no_webhook:
        base = (api_base_url or os.environ.get("MODELFAUCET_API_BASE_URL") or DEFAULT_API_BASE_URL).rstrip("/")
        url = _webhook_url(base, allow_remote=allow_remote or os.environ.get("ALLOW_REMOTE_WEBHOOK_REPLAY") == "1")
    ctx = _context()
    try:
        event = simulate_stripe(ctx, action, checkout_session_id, amount_cents=amount_cents)
    except Refusal as exc:
        typer.echo(f"refused: {exc.message}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    what = f"{action} {checkout_session_id}: event {event.id} ({event.type})"
    if url is None:
        typer.echo(f"simulated {what}; webhook not sent (--no-webhook): `modelfaucet stripe sync` will find it")
        raise typer.Exit(EXIT_OK)
    code, line = _deliver(event, url, ctx.settings.stripe_webhook_secret)
    typer.echo(f"simulated {what}; {line}", err=code != EXIT_OK)
    raise typer.Exit(code)


# --- sync output -------------------------------------------------------------------------


def _as_json(report: SyncReport) -> dict[str, object]:
    return {
        "dry_run": report.dry_run,
        "since": iso(report.since),
        "summary": {str(outcome): count for outcome, count in report.summary.items()},
        "items": [as_item(row) for row in report.rows],
    }


def _print_table(report: SyncReport) -> None:
    typer.echo(f"stripe sync{' (dry run: nothing written)' if report.dry_run else ''} since {iso(report.since)}")
    columns = ("checkout_session_id", "topup_id", "outcome", "stripe_status", "local_status", "amount_usd")
    rows = [
        [str(item[name] if item[name] is not None else "-") for name in columns] for item in map(as_item, report.rows)
    ]
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(columns)]
    typer.echo("  ".join(name.upper().ljust(width) for name, width in zip(columns, widths, strict=True)))
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    counts = ", ".join(f"{outcome} {count}" for outcome, count in report.summary.items() if count)
    typer.echo(f"summary: {counts or 'no sessions in the window'}")
    if report.flagged:
        typer.echo(f"{len(report.flagged)} flagged: an operator must look at them", err=True)


# --- simulate delivery ---------------------------------------------------------------------


def _webhook_url(api_base_url: str, *, allow_remote: bool) -> str:
    parts = urlsplit(api_base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        typer.echo("MODELFAUCET_API_BASE_URL must be an http(s) URL such as http://127.0.0.1:3001.", err=True)
        raise typer.Exit(EXIT_USAGE)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        typer.echo("MODELFAUCET_API_BASE_URL has an invalid port.", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    if not allow_remote and not is_local_target(parts.hostname, port):
        typer.echo(
            f"refused: {parts.hostname} is not a local (loopback/private) target; set "
            "ALLOW_REMOTE_WEBHOOK_REPLAY=1 to send to a remote API. Nothing was changed.",
            err=True,
        )
        raise typer.Exit(EXIT_USAGE)
    return f"{api_base_url}/v1/stripe/webhook"


def _deliver(event: SimulatedEvent, url: str, secret: str | None) -> tuple[int, str]:
    payload = json.dumps(event.as_event(), separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "modelfaucet-stripe-simulate"}
    secrets = secrets_from_setting(secret)
    if secrets:
        # The first of several rotated secrets signs, as Stripe signs with the current one.
        headers["Stripe-Signature"] = sign(payload, secrets[0], int(time.time()))
    # No proxies from the environment and no redirects: the checked target is the one reached.
    with httpx.Client(timeout=TIMEOUT_SECONDS, trust_env=False, follow_redirects=False) as http:
        try:
            response = http.post(url, content=payload, headers=headers)
        except httpx.HTTPError as exc:
            return EXIT_FAILED, f"webhook NOT delivered: could not reach {url} ({type(exc).__name__})"
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        return (
            EXIT_FAILED,
            f"webhook refused: HTTP {response.status_code} {error.get('code', '')}: {error.get('message', '')}",
        )
    outcome = body.get("outcome", "ignored") if isinstance(body, dict) else "?"
    return EXIT_OK, f"webhook delivered: HTTP 200, outcome {outcome}"


def _context() -> ServiceContext:
    ctx = open_context(settings_or_exit())
    require_migrated(ctx)
    return ctx
