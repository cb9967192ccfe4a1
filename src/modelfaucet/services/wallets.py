"""Read models of wallets for operators: a listing, and one wallet with its recent postings
and open holds."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.ledger import AccountState, OwnerScope
from .context import ServiceContext
from .repositories import HoldRecord, PostingLine

RECENT_ENTRIES = 20


@dataclass(frozen=True, slots=True)
class WalletDetail:
    wallet: AccountState
    recent_entries: tuple[PostingLine, ...]  # newest first
    open_holds: tuple[HoldRecord, ...] = ()  # oldest first (SPEC §18)


def list_wallets(
    ctx: ServiceContext, *, owner_scope: OwnerScope | None, owner_id: str | None, limit: int
) -> list[AccountState]:
    """Accounts by owner scope, then owner id, optionally of one scope or owner."""
    with ctx.reader() as uow:
        return uow.reports.wallets(owner_scope=owner_scope, owner_id=owner_id, limit=limit)


def wallet_detail(ctx: ServiceContext, wallet_id: str) -> WalletDetail:
    """The wallet (or NotFound) and its latest postings."""
    with ctx.reader() as uow:
        wallet = uow.ledger.require(wallet_id)
        entries = uow.ledger.recent_postings(wallet_id, limit=RECENT_ENTRIES)
        holds = uow.holds.open_on(wallet_id)
    return WalletDetail(wallet, tuple(entries), tuple(holds))
