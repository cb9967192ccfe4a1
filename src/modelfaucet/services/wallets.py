"""Read models of wallets for operators: a listing, and one wallet with its recent postings
and open holds.

An end user's external id (the app's own user id) is stored only as an HMAC keyed by the app
(:func:`~modelfaucet.domain.identity.external_user_hash`), never in clear, so no listing can
show it. To find one end user's wallet, an operator gives the app and the external id: the id
is hashed the same way and matched. Each listed wallet names what *is* stored about its owner:
the end user's app and that app's developer, or the developer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.identity import external_user_hash
from ..domain.ledger import AccountState, OwnerScope
from ..domain.outcomes import InvalidRequest
from .context import ServiceContext
from .repositories import HoldRecord, ListedWallet, PostingLine, WalletQuery

RECENT_ENTRIES = 20


@dataclass(frozen=True, slots=True)
class WalletDetail:
    wallet: AccountState
    recent_entries: tuple[PostingLine, ...]  # newest first
    open_holds: tuple[HoldRecord, ...] = ()  # oldest first (SPEC §18)


def list_wallets(
    ctx: ServiceContext,
    *,
    owner_scope: OwnerScope | None = None,
    owner_id: str | None = None,
    public_app_id: str | None = None,
    external_user_id: str | None = None,
    developer_email: str | None = None,
    limit: int = 100,
) -> list[ListedWallet]:
    """Wallets and their owners by owner scope, then owner id; every given filter must hold.

    ``public_app_id``: the end users of that app (none if there is no such app);
    ``external_user_id`` (with ``public_app_id``): that one end user; ``developer_email``:
    the developer's wallet and the wallets of its apps' end users.
    """
    if external_user_id is not None and public_app_id is None:
        raise InvalidRequest(
            "external_user_id needs public_app_id: external ids are stored only hashed per app.",
            details={"field": "public_app_id", "reason": "required with external_user_id"},
        )
    with ctx.reader() as uow:
        app_id: str | None = None
        if public_app_id is not None:
            app = uow.catalog.get_app(public_app_id)
            if app is None:
                return []
            app_id = app.id
        user_hash = None if app_id is None or external_user_id is None else external_user_hash(app_id, external_user_id)
        query = WalletQuery(
            owner_scope=owner_scope,
            owner_id=owner_id,
            app_id=app_id,
            external_user_hash=user_hash,
            developer_email=developer_email,
            limit=limit,
        )
        return uow.reports.wallets(query)


def wallet_detail(ctx: ServiceContext, wallet_id: str) -> WalletDetail:
    """The wallet (or NotFound) and its latest postings."""
    with ctx.reader() as uow:
        wallet = uow.ledger.require(wallet_id)
        entries = uow.ledger.recent_postings(wallet_id, limit=RECENT_ENTRIES)
        holds = uow.holds.open_on(wallet_id)
    return WalletDetail(wallet, tuple(entries), tuple(holds))


@dataclass(frozen=True, slots=True)
class EntriesPage:
    entries: tuple[PostingLine, ...]  # newest first
    next_before_id: int | None  # the cursor of the next (older) page; None on the last


def wallet_entries(
    ctx: ServiceContext, wallet_id: str, *, before_id: int | None = None, limit: int = 50
) -> EntriesPage:
    """One page of the wallet's ledger entries (NotFound for an unknown wallet), newest first."""
    if limit < 1 or limit > 500:
        raise InvalidRequest("limit must be between 1 and 500.", details={"field": "limit"})
    with ctx.reader() as uow:
        uow.ledger.require(wallet_id)
        rows = uow.ledger.recent_postings(wallet_id, limit=limit + 1, before_id=before_id)
    page = rows[:limit]
    more = len(rows) > limit
    return EntriesPage(tuple(page), page[-1].posting_id if more and page else None)
