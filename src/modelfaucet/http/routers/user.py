"""End-user routes (session auth): own wallet, own top-ups, Stripe Checkout sessions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, Field

from ...services import topups
from ...services.checkout import CheckoutCommand, create_checkout_session
from ..deps import Context, SessionUser
from ..schemas import PositiveUsdUnits, StrictModel, UsdString, WalletSummary, error_responses

router = APIRouter(tags=["end user"])


class Topup(BaseModel):
    id: str
    checkout_session_id: str
    checkout_url: str
    wallet_id: str
    amount_usd: UsdString
    currency: str
    status: str
    created_at: str
    credited_at: str | None


class TopupList(BaseModel):
    items: list[Topup]


class CheckoutSessionRequest(StrictModel):
    amount_usd: PositiveUsdUnits
    success_url: Annotated[str, Field(min_length=1, max_length=2048)]
    cancel_url: Annotated[str, Field(min_length=1, max_length=2048)]


class CheckoutSessionCreated(BaseModel):
    checkout_session_id: str
    checkout_url: str
    wallet_id: str
    amount_usd: UsdString
    status: str
    topup_id: str


@router.get("/v1/user/wallet", response_model=WalletSummary, responses=error_responses(401))
def get_wallet(ctx: Context, user: SessionUser) -> dict[str, Any]:
    return topups.user_wallet(ctx, user)


@router.get("/v1/user/topups", response_model=TopupList, responses=error_responses(400, 401))
def list_topups(ctx: Context, user: SessionUser, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    return {"items": topups.list_user_topups(ctx, user, limit=limit)}


@router.post(
    "/v1/user/stripe/checkout-sessions",
    status_code=201,
    response_model=CheckoutSessionCreated,
    responses=error_responses(400, 401, 409, 502),
)
def create_checkout(
    ctx: Context,
    user: SessionUser,
    body: CheckoutSessionRequest,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> dict[str, Any]:
    topup = create_checkout_session(
        ctx,
        user,
        CheckoutCommand(
            amount_units=body.amount_usd,
            success_url=body.success_url,
            cancel_url=body.cancel_url,
            idempotency_key=idempotency_key,
        ),
    )
    return {
        "checkout_session_id": topup["checkout_session_id"],
        "checkout_url": topup["checkout_url"],
        "wallet_id": topup["wallet_id"],
        "amount_usd": topup["amount_usd"],
        "status": topup["status"],
        "topup_id": topup["id"],
    }
