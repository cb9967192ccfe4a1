"""Admin: wallet adjustments, refunds and chargebacks (SPEC §8)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from ...domain.money import format_usd
from ...services.apply_adjustment import (
    AdjustmentApplied,
    AdjustmentKind,
    AdjustWallet,
    Direction,
    apply_adjustment,
)
from ...services.idempotency import resolve_key
from ..deps import AdminActor, Context
from ..idempotent import IdempotencyKeyHeader, idempotent_response
from ..schemas import PositiveUsdUnits, StrictModel, UsdString, error_responses, parse_uuid

router = APIRouter(tags=["adjustments"])


class AdjustmentIn(StrictModel):
    kind: AdjustmentKind = AdjustmentKind.ADJUSTMENT
    direction: Direction
    amount_usd: PositiveUsdUnits
    reason: Annotated[str, Field(min_length=1, max_length=1000)]
    idempotency_key: str | None = Field(
        default=None, description="8–128 characters; the Idempotency-Key header is accepted too."
    )

    @field_validator("reason")
    @classmethod
    def _reason_has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class AdjustmentOut(BaseModel):
    id: str
    wallet_id: str
    kind: AdjustmentKind
    direction: Direction
    amount_usd: UsdString
    status: str
    reason: str
    idempotency_key: str | None
    wallet_balance_usd: UsdString

    @classmethod
    def of(cls, applied: AdjustmentApplied) -> AdjustmentOut:
        return cls(
            id=applied.id,
            wallet_id=applied.wallet_id,
            kind=applied.kind,
            direction=applied.direction,
            amount_usd=format_usd(applied.amount_units),
            status=applied.status,
            reason=applied.reason,
            idempotency_key=applied.idempotency_key,
            wallet_balance_usd=format_usd(applied.wallet_balance_units),
        )


@router.post(
    "/v1/admin/wallets/{wallet_id}/adjustments",
    status_code=201,
    response_model=AdjustmentOut,
    responses=error_responses(400, 401, 402, 404, 409),
)
def create_adjustment(
    ctx: Context,
    actor: AdminActor,
    wallet_id: str,
    body: AdjustmentIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Credit or debit a wallet against the kind's contra account. Same key + same body replays."""
    command = AdjustWallet(
        wallet_id=parse_uuid(wallet_id, field="wallet_id"),
        kind=body.kind,
        direction=body.direction,
        amount_units=body.amount_usd,
        reason=body.reason,
        idempotency_key=resolve_key(body.idempotency_key, idempotency_key),
    )
    outcome = apply_adjustment(ctx, command, actor=actor)
    return idempotent_response(outcome, AdjustmentOut.of(outcome.result), status_code=201)
