"""End-user read models: the session user's own wallet and top-ups."""

from __future__ import annotations

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
