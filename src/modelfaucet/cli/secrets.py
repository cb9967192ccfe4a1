"""``modelfaucet secrets``: generate a key, re-encrypt provider keys under a new one."""

from __future__ import annotations

from typing import Annotated

import typer

from .context import open_context, plural, require_migrated, settings_or_exit

secrets_app = typer.Typer(help="Secret key commands.", no_args_is_help=True)


@secrets_app.command("generate-key")
def generate_key() -> None:
    """Print a fresh random MODELFAUCET_SECRET_KEY (base64url of 32 bytes)."""
    from ..adapters.secretbox import generate_key as new_key

    typer.echo(new_key())


@secrets_app.command("rotate")
def rotate(
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction.")] = 200,
) -> None:
    """Re-encrypt every provider key under MODELFAUCET_SECRET_KEY.

    Set MODELFAUCET_SECRET_KEY to the new key and MODELFAUCET_SECRET_KEY_PREVIOUS to the old
    one(s) on every process first; readers accept both while this runs.
    """
    from rich.progress import Progress

    from ..adapters.secretbox import SecretBoxError
    from ..services.context import Actor
    from ..services.rotate_secrets import count_needing_rotation, rotate_secrets

    settings = settings_or_exit()
    if not settings.secret_key:
        typer.echo("MODELFAUCET_SECRET_KEY must be set to the new key before rotating", err=True)
        raise typer.Exit(2)
    ctx = open_context(settings)
    require_migrated(ctx)
    try:
        total = count_needing_rotation(ctx)
        with Progress(transient=True) as progress:
            task = progress.add_task("re-encrypting provider keys", total=total)
            result = rotate_secrets(
                ctx,
                actor=Actor(name="cli:secrets-rotate"),
                batch_size=batch_size,
                on_batch=lambda n: progress.advance(task, n),
            )
    except SecretBoxError as exc:
        typer.echo(f"rotation stopped: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        ctx.db.dispose()
    typer.echo(
        f"re-encrypted {plural(result.rotated_count, 'provider key')} under key {result.key_id}; "
        f"{result.remaining_count} remaining"
    )
    if result.remaining_count:
        raise typer.Exit(1)
