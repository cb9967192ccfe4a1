"""Admin: wallets (SPEC §15).

The listing shows, beside each wallet, what is stored about its owner: an end user's app and
that app's developer, or the developer. An end user's external id is not shown: it is stored
only as a per-app hash (never in clear); filter by ``public_app_id`` and ``external_user_id``
to find that user's wallet.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from ...domain.catalog import MAX_EXTERNAL_USER_ID_LENGTH
from ...domain.ledger import OwnerScope
from ...domain.money import format_usd
from ...domain.timestamps import iso
from ...services import wallets
from ...services.repositories import ListedWallet, PostingLine
from ..deps import AdminActor, Context
from ..schemas import UsdString, WalletSummary, error_responses, parse_uuid, wallet_fields

router = APIRouter(tags=["wallets"])


class WalletEntry(BaseModel):
    posting_id: int
    transaction_id: str
    amount_usd: UsdString
    reason: str
    created_at: str

    @classmethod
    def of(cls, line: PostingLine) -> WalletEntry:
        return cls(
            posting_id=line.posting_id,
            transaction_id=line.transaction_id,
            amount_usd=format_usd(line.amount_units),
            reason=line.reason,
            created_at=iso(line.created_at),
        )


class OpenHold(BaseModel):
    hold_id: str
    request_id: str
    amount_usd: UsdString
    created_at: str
    expires_at: str


class WalletDetail(WalletSummary):
    recent_entries: list[WalletEntry]
    open_holds: list[OpenHold]


class ListedWalletOut(WalletSummary):
    """A wallet and its owner: ``public_app_id`` for an end user's wallet, ``developer_id`` and
    ``developer_email`` for an end user's (the app's developer) or a developer's wallet."""

    public_app_id: str | None
    developer_id: str | None
    developer_email: str | None

    @classmethod
    def of_listed(cls, listed: ListedWallet) -> ListedWalletOut:
        return cls(
            **wallet_fields(listed.wallet),
            public_app_id=listed.owner.public_app_id,
            developer_id=listed.owner.developer_id,
            developer_email=listed.owner.developer_email,
        )


class WalletList(BaseModel):
    items: list[ListedWalletOut]


@router.get("/v1/admin/wallets", response_model=WalletList, responses=error_responses(400, 401))
def list_wallets(
    *,
    ctx: Context,
    _actor: AdminActor,
    owner_scope: Annotated[OwnerScope | None, Query()] = None,
    owner_id: Annotated[str | None, Query(max_length=64)] = None,
    public_app_id: Annotated[str | None, Query(max_length=64, description="End users of this app.")] = None,
    external_user_id: Annotated[
        str | None,
        Query(
            max_length=MAX_EXTERNAL_USER_ID_LENGTH,
            description="With public_app_id: that end user (matched by its stored per-app hash).",
        ),
    ] = None,
    developer_email: Annotated[
        str | None, Query(max_length=320, description="The developer's wallet and its apps' end users'.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> WalletList:
    found = wallets.list_wallets(
        ctx,
        owner_scope=owner_scope,
        owner_id=owner_id,
        public_app_id=public_app_id,
        external_user_id=external_user_id,
        developer_email=developer_email,
        limit=limit,
    )
    return WalletList(items=[ListedWalletOut.of_listed(listed) for listed in found])


@router.get("/v1/admin/wallets/{wallet_id}", response_model=WalletDetail, responses=error_responses(400, 401, 404))
def get_wallet(ctx: Context, _actor: AdminActor, wallet_id: str) -> WalletDetail:
    detail = wallets.wallet_detail(ctx, parse_uuid(wallet_id, field="wallet_id"))
    return WalletDetail(
        **wallet_fields(detail.wallet),
        recent_entries=[WalletEntry.of(line) for line in detail.recent_entries],
        open_holds=[
            OpenHold(
                hold_id=hold.id,
                request_id=hold.request_id,
                amount_usd=format_usd(hold.amount_units),
                created_at=iso(hold.created_at),
                expires_at=iso(hold.expires_at),
            )
            for hold in detail.open_holds
        ],
    )
