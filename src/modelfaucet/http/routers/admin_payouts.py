"""Admin: payout review (SPEC §9): run-mock → approve → mark-paid, plus cancel / mark-failed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ...domain.money import format_usd
from ...domain.payouts import PayoutAction, PayoutStatus
from ...domain.timestamps import iso
from ...services import payout_queries
from ...services.context import Actor, ServiceContext
from ...services.payout_queries import PayoutWithHistory
from ...services.repositories import AuditRecord, PayoutRecord
from ...services.review_payout import ReviewPayout, review_payout
from ...services.run_payouts import run_mock_payouts
from ..deps import AdminActor, Context
from ..schemas import StrictModel, UsdString, UsdUnits, error_responses, parse_uuid

router = APIRouter(tags=["payouts"])

Note = Annotated[str | None, Field(default=None, max_length=2000)]


class RunMockIn(StrictModel):
    threshold_usd: UsdUnits | None = Field(
        default=None,
        description=(
            "Minimum payable balance, greater than 0; default PAYOUT_THRESHOLD_USD. No payout is ever "
            "smaller than PAYOUT_MINIMUM_USD, whatever the threshold."
        ),
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

    @classmethod
    def of(cls, payout: PayoutRecord) -> PayoutOut:
        return cls(**_payout_fields(payout))


class PayoutHistoryEntry(BaseModel):
    at: str
    actor: str
    action: str
    before_status: str | None
    after_status: str | None
    amount_usd: UsdString | None
    note: str | None
    request_id: str | None

    @classmethod
    def of(cls, entry: AuditRecord) -> PayoutHistoryEntry:
        return cls(
            at=iso(entry.created_at),
            actor=entry.actor,
            action=entry.action,
            before_status=entry.before_status,
            after_status=entry.after_status,
            amount_usd=None if entry.amount_units is None else format_usd(entry.amount_units),
            note=entry.note,
            request_id=entry.request_id,
        )


class PayoutDetail(PayoutOut):
    history: list[PayoutHistoryEntry]

    @classmethod
    def of_history(cls, found: PayoutWithHistory) -> PayoutDetail:
        return cls(
            **_payout_fields(found.payout),
            history=[PayoutHistoryEntry.of(entry) for entry in found.history],
        )


class PayoutList(BaseModel):
    items: list[PayoutOut]

    @classmethod
    def of(cls, payouts: Sequence[PayoutRecord]) -> PayoutList:
        return cls(items=[PayoutOut.of(payout) for payout in payouts])


def _payout_fields(payout: PayoutRecord) -> dict[str, Any]:
    return {
        "id": payout.id,
        "developer_id": payout.developer_id,
        "wallet_id": payout.account_id,
        "amount_usd": format_usd(payout.amount_units),
        "status": payout.status,
        "provider": payout.provider,
        "provider_payout_id": payout.provider_payout_id,
        "created_by": payout.created_by,
        "approved_by": payout.approved_by,
        "operator_note": payout.operator_note,
        "created_at": iso(payout.created_at),
        "updated_at": iso(payout.updated_at),
    }


def _review(ctx: ServiceContext, actor: Actor, payout_id: str, action: PayoutAction, note: str | None) -> PayoutOut:
    command = ReviewPayout(parse_uuid(payout_id, field="payout_id"), action, note)
    return PayoutOut.of(review_payout(ctx, command, actor=actor).payout)


@router.post("/v1/admin/payouts/run-mock", response_model=PayoutList, responses=error_responses(400, 401))
def run_mock(ctx: Context, actor: AdminActor, body: RunMockIn | None = None) -> PayoutList:
    """Create one pending payout per developer whose payable balance reaches the threshold.

    No money moves: the amount is reserved on the developer wallet until paid or voided.
    """
    threshold = body.threshold_usd if body is not None else None
    return PayoutList.of(run_mock_payouts(ctx, actor=actor, threshold_units=threshold))


@router.get("/v1/admin/payouts", response_model=PayoutList, responses=error_responses(400, 401))
def list_payouts(
    ctx: Context,
    _actor: AdminActor,
    status: Annotated[PayoutStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> PayoutList:
    return PayoutList.of(payout_queries.list_payouts(ctx, status=status, limit=limit))


@router.get("/v1/admin/payouts/{payout_id}", response_model=PayoutDetail, responses=error_responses(400, 401, 404))
def get_payout(ctx: Context, _actor: AdminActor, payout_id: str) -> PayoutDetail:
    return PayoutDetail.of_history(payout_queries.get_payout(ctx, parse_uuid(payout_id, field="payout_id")))


@router.post(
    "/v1/admin/payouts/{payout_id}/approve",
    response_model=PayoutOut,
    responses=error_responses(400, 401, 403, 404, 409),
)
def approve(ctx: Context, actor: AdminActor, payout_id: str, body: OperatorNoteIn | None = None) -> PayoutOut:
    """pending → processing. Approving a processing payout again answers it unchanged."""
    note = body.operator_note if body is not None else None
    return _review(ctx, actor, payout_id, PayoutAction.APPROVE, note)


@router.post(
    "/v1/admin/payouts/{payout_id}/mark-paid",
    response_model=PayoutOut,
    responses=error_responses(400, 401, 404, 409),
)
def mark_paid(ctx: Context, actor: AdminActor, payout_id: str) -> PayoutOut:
    """processing → paid: debits the developer wallet (mock_payout_paid). Refused before approval."""
    return _review(ctx, actor, payout_id, PayoutAction.MARK_PAID, None)


@router.post(
    "/v1/admin/payouts/{payout_id}/cancel",
    response_model=PayoutOut,
    responses=error_responses(400, 401, 404, 409),
)
def cancel(ctx: Context, actor: AdminActor, payout_id: str, body: OperatorNoteIn | None = None) -> PayoutOut:
    """pending or processing → cancelled; the reserved amount is released."""
    note = body.operator_note if body is not None else None
    return _review(ctx, actor, payout_id, PayoutAction.CANCEL, note)


@router.post(
    "/v1/admin/payouts/{payout_id}/mark-failed",
    response_model=PayoutOut,
    responses=error_responses(400, 401, 404, 409),
)
def mark_failed(ctx: Context, actor: AdminActor, payout_id: str, body: OperatorNoteIn | None = None) -> PayoutOut:
    """processing → failed (the mock provider could not pay); the reserved amount is released."""
    note = body.operator_note if body is not None else None
    return _review(ctx, actor, payout_id, PayoutAction.MARK_FAILED, note)
