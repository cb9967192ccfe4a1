"""Admin: payout review (SPEC §9): run-mock → approve → mark-paid, plus cancel / mark-failed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ...domain.payouts import PayoutStatus
from ...services import payouts
from ..deps import AdminActor, Context
from ..schemas import StrictModel, UsdString, UsdUnits, error_responses, parse_uuid

router = APIRouter(tags=["payouts"])

Note = Annotated[str | None, Field(default=None, max_length=2000)]


class RunMockIn(StrictModel):
    threshold_usd: UsdUnits | None = Field(
        default=None, description="Minimum payable balance; default PAYOUT_THRESHOLD_USD."
    )


class OperatorNoteIn(StrictModel):
    operator_note: Note = None


class PayoutOut(BaseModel):
    id: str
    developer_id: str
    wallet_id: str
    amount_usd: UsdString
    status: PayoutStatus
    provider: str
    provider_payout_id: str | None
    created_by: str
    approved_by: str | None
    operator_note: str | None
    created_at: str
    updated_at: str


class PayoutHistoryEntry(BaseModel):
    at: str
    actor: str
    action: str
    before_status: str | None
    after_status: str | None
    amount_usd: UsdString | None
    note: str | None
    request_id: str | None


class PayoutDetail(PayoutOut):
    history: list[PayoutHistoryEntry]


class PayoutList(BaseModel):
    items: list[PayoutOut]


@router.post("/v1/admin/payouts/run-mock", response_model=PayoutList, responses=error_responses(400, 401))
def run_mock(ctx: Context, actor: AdminActor, body: RunMockIn | None = None) -> dict[str, Any]:
    """Create one pending payout per developer whose payable balance reaches the threshold.

    No money moves: the amount is reserved on the developer wallet until paid or voided.
    """
    threshold = body.threshold_usd if body is not None else None
    return {"items": payouts.run_mock_payouts(ctx, actor=actor, threshold_units=threshold)}


@router.get("/v1/admin/payouts", response_model=PayoutList, responses=error_responses(400, 401))
def list_payouts(
    ctx: Context,
    _actor: AdminActor,
    status: Annotated[PayoutStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    return {"items": payouts.list_payouts(ctx, status=status, limit=limit)}


@router.get("/v1/admin/payouts/{payout_id}", response_model=PayoutDetail, responses=error_responses(400, 401, 404))
def get_payout(ctx: Context, _actor: AdminActor, payout_id: str) -> dict[str, Any]:
    return payouts.get_payout(ctx, parse_uuid(payout_id, field="payout_id"))


@router.post(
    "/v1/admin/payouts/{payout_id}/approve",
    response_model=PayoutOut,
    responses=error_responses(400, 401, 403, 404, 409),
)
def approve(ctx: Context, actor: AdminActor, payout_id: str, body: OperatorNoteIn | None = None) -> dict[str, Any]:
    """pending → processing. Approving a processing payout again answers it unchanged."""
    note = body.operator_note if body is not None else None
    return payouts.approve_payout(ctx, parse_uuid(payout_id, field="payout_id"), actor=actor, operator_note=note)


@router.post(
    "/v1/admin/payouts/{payout_id}/mark-paid",
    response_model=PayoutOut,
    responses=error_responses(400, 401, 404, 409),
)
def mark_paid(ctx: Context, actor: AdminActor, payout_id: str) -> dict[str, Any]:
    """processing → paid: debits the developer wallet (mock_payout_paid). Refused before approval."""
    return payouts.mark_payout_paid(ctx, parse_uuid(payout_id, field="payout_id"), actor=actor)


@router.post(
    "/v1/admin/payouts/{payout_id}/cancel",
    response_model=PayoutOut,
    responses=error_responses(400, 401, 404, 409),
)
def cancel(ctx: Context, actor: AdminActor, payout_id: str, body: OperatorNoteIn | None = None) -> dict[str, Any]:
    """pending or processing → cancelled; the reserved amount is released."""
    note = body.operator_note if body is not None else None
    return payouts.cancel_payout(ctx, parse_uuid(payout_id, field="payout_id"), actor=actor, operator_note=note)


@router.post(
    "/v1/admin/payouts/{payout_id}/mark-failed",
    response_model=PayoutOut,
    responses=error_responses(400, 401, 404, 409),
)
def mark_failed(ctx: Context, actor: AdminActor, payout_id: str, body: OperatorNoteIn | None = None) -> dict[str, Any]:
    """processing → failed (the mock provider could not pay); the reserved amount is released."""
    note = body.operator_note if body is not None else None
    return payouts.mark_payout_failed(ctx, parse_uuid(payout_id, field="payout_id"), actor=actor, operator_note=note)
