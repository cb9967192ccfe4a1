"""Seeing the SQL a piece of work sends: every statement the engine's cursors execute,
SQLAlchemy's and the bare driver's alike (``bulk.driver_rows`` tells the same listeners)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from modelfaucet.services.context import ServiceContext


@contextmanager
def statements(ctx: ServiceContext) -> Iterator[list[str]]:
    """The statements run inside the block, in order, whitespace collapsed."""
    seen: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(" ".join(sql.split()))

    event.listen(ctx.db.engine, "before_cursor_execute", statement)
    try:
        yield seen
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", statement)
