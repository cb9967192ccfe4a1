"""``modelfaucet audit verify``: chain what has committed, recompute the audit hash chain;
exit 1 when it is broken or rows stay unchained."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from .context import open_context, plural, require_migrated, settings_or_exit

audit_app = typer.Typer(help="Audit log commands.", no_args_is_help=True)


@audit_app.command("verify")
def verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    no_chain: Annotated[
        bool,
        typer.Option(
            "--no-chain",
            help="Only read: do not chain committed rows first (old unchained rows are then reported).",
        ),
    ] = False,
) -> None:
    """Chain committed audit rows, recompute the hash chain and name the first broken row."""
    from ..services.verify_audit import verify_audit_chain

    ctx = open_context(settings_or_exit(), read_only=True)
    require_migrated(ctx)
    report = verify_audit_chain(ctx, chain_first=not no_chain)
    ctx.db.dispose()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    elif report.ok:
        typer.echo(f"audit chain intact: {plural(report.checked_count, 'row')}, tail hash {report.tail_hash}")
    else:
        typer.echo(
            f"audit chain BROKEN at row {report.first_broken_id}: {report.problem} "
            f"({plural(report.checked_count, 'row')} before it verified)",
            err=True,
        )
    if not report.ok:
        raise typer.Exit(1)
