"""Top-up read models: the session user's own wallet and top-ups, and the recent top-ups for operators."""

from __future__ import annotations

from datetime import datetime

from ..domain.ledger import AccountState
from .context import ServiceContext
from .repositories import TopupRecord
from .sessions import SessionUser


def user_wallet(ctx: ServiceContext, user: SessionUser) -> AccountState:
    """The session user's own wallet — never anyone else's: the id comes from the session."""
    with ctx.reader() as uow:
        return uow.ledger.require(user.account_id)


def list_user_topups(ctx: ServiceContext, user: SessionUser, *, limit: int = 50) -> list[TopupRecord]:
    """The session user's own top-ups, newest first."""
    with ctx.reader() as uow:
        return uow.topups.for_end_user(user.end_user_id, limit=limit)


def recent_topups(ctx: ServiceContext, *, since: datetime) -> list[TopupRecord]:
    """Every top-up created since the moment, newest first (the console's top-ups page)."""
    with ctx.reader() as uow:
        found = uow.topups.created_since(since)
    return sorted(found, key=lambda t: (t.created_at, t.id), reverse=True)
