"""End-user routes (session auth): own wallet, own top-ups, Stripe Checkout sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ...domain.money import format_usd
from ...domain.timestamps import iso
from ...services import topups
from ...services.checkout import CheckoutCommand, CheckoutCreated, create_checkout_session
from ...services.repositories import TopupRecord
from ..deps import Context, SessionUser
from ..idempotent import idempotent_response
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

    @classmethod
    def of(cls, topup: TopupRecord) -> Topup:
        return cls(
            id=topup.id,
            checkout_session_id=topup.checkout_session_id,
            checkout_url=topup.checkout_url,
            wallet_id=topup.account_id,
            amount_usd=format_usd(topup.amount_units),
            currency=topup.currency,
            status=str(topup.status),
            created_at=iso(topup.created_at),
            credited_at=iso(topup.credited_at) or None,
        )


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

    @classmethod
    def of(cls, created: CheckoutCreated) -> CheckoutSessionCreated:
        return cls(
            checkout_session_id=created.checkout_session_id,
            checkout_url=created.checkout_url,
            wallet_id=created.wallet_id,
            amount_usd=format_usd(created.amount_units),
            status=str(created.status),
            topup_id=created.topup_id,
        )


@router.get("/v1/user/wallet", response_model=WalletSummary, responses=error_responses(401))
def get_wallet(ctx: Context, user: SessionUser) -> WalletSummary:
    return WalletSummary.of(topups.user_wallet(ctx, user))


@router.get("/v1/user/topups", response_model=TopupList, responses=error_responses(400, 401))
def list_topups(ctx: Context, user: SessionUser, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> TopupList:
    return TopupList(items=[Topup.of(topup) for topup in topups.list_user_topups(ctx, user, limit=limit)])


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
) -> JSONResponse:
    """Open a Checkout session and record its top-up pending. The same Idempotency-Key and
    body answer the first session again; the same key with another body is a 409."""
    outcome = create_checkout_session(
        ctx,
        user,
        CheckoutCommand(
            amount_units=body.amount_usd,
            success_url=body.success_url,
            cancel_url=body.cancel_url,
            idempotency_key=idempotency_key,
        ),
    )
    return idempotent_response(outcome, CheckoutSessionCreated.of(outcome.result), status_code=201)
