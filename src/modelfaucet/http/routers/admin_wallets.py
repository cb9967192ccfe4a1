"""Admin: wallets (SPEC §15)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from ...domain.ledger import OwnerScope
from ...services import wallets
from ..deps import AdminActor, Context
from ..schemas import UsdString, WalletSummary, error_responses, parse_uuid

router = APIRouter(tags=["wallets"])


class WalletEntry(BaseModel):
    posting_id: int
    transaction_id: str
    amount_usd: UsdString
    reason: str
    created_at: str


class WalletDetail(WalletSummary):
    recent_entries: list[WalletEntry]


class WalletList(BaseModel):
    items: list[WalletSummary]


@router.get("/v1/admin/wallets", response_model=WalletList, responses=error_responses(400, 401))
def list_wallets(
    ctx: Context,
    _actor: AdminActor,
    owner_scope: Annotated[OwnerScope | None, Query()] = None,
    owner_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    return {"items": wallets.list_wallets(ctx, owner_scope=owner_scope, owner_id=owner_id, limit=limit)}


@router.get("/v1/admin/wallets/{wallet_id}", response_model=WalletDetail, responses=error_responses(400, 401, 404))
def get_wallet(ctx: Context, _actor: AdminActor, wallet_id: str) -> dict[str, Any]:
    return wallets.wallet_detail(ctx, parse_uuid(wallet_id, field="wallet_id"))
