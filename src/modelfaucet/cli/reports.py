"""``modelfaucet reports NAME [-o FILE] [--from] [--to]``: write a CSV report of the registry.

Generic over :data:`modelfaucet.services.reports.REPORTS` (usage, revenue, payouts, …): the
same rows and the same CSV writer as the HTTP export, streamed in constant memory, with a
Rich progress bar on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..adapters.csvout import Cell, write_csv
from ..domain.outcomes import Refusal
from ..services import reports
from .context import open_context, plural, require_migrated, settings_or_exit


def reports_command(
    name: Annotated[str, typer.Argument(help="Report to write: usage, revenue or payouts.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write (default: standard output).")
    ] = None,
    from_: Annotated[str | None, typer.Option("--from", help="ISO-8601 start (inclusive, UTC if no offset).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="ISO-8601 end (exclusive).")] = None,
) -> None:
    """Write a CSV report (header row first)."""
    console = Console(stderr=True)
    try:
        spec = reports.get_report(name)
        start = reports.parse_time_bound(from_, field="from")
        end = reports.parse_time_bound(to, field="to")
        reports.check_bounds(start, end)
    except Refusal as refusal:
        known = ", ".join(sorted(reports.REPORTS))
        console.print(f"error: {refusal.message} (reports: {known})")
        raise typer.Exit(2) from None
    ctx = open_context(settings_or_exit(), read_only=True)
    try:
        require_migrated(ctx)
        total = reports.count_report_rows(ctx, spec.name, start=start, end=end)
        with Progress(
            TextColumn(f"{spec.filename}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=output is None,
            disable=not console.is_terminal and output is None,
        ) as progress:
            task = progress.add_task("rows", total=total)

            def rows() -> Iterator[Sequence[Cell]]:
                for count, row in enumerate(reports.iter_report_rows(ctx, spec.name, start=start, end=end), 1):
                    if count % 1000 == 0:
                        progress.update(task, completed=count)
                    yield row

            if output is None:
                written = _write(sys.stdout.buffer, spec.header, rows())
            else:
                with output.open("wb") as handle:
                    written = _write(handle, spec.header, rows())
            progress.update(task, completed=written)
    finally:
        ctx.db.dispose()
    if output is not None:
        console.print(f"wrote {plural(written, 'row')} to {output}")


def _write(handle: BinaryIO, header: tuple[str, ...], rows: Iterator[Sequence[Cell]]) -> int:
    return write_csv(handle, header, rows)
