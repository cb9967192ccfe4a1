"""Admin: ledger reconciliation (SPEC §7)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from ...domain.reconciliation import RunSource
from ...services.reconcile import reconcile_ledger
from ..deps import AdminActor, Context
from ..schemas import UsdString, error_responses

router = APIRouter(tags=["reconciliation"])


class ReconciliationSummary(BaseModel):
    wallet_count: int
    balanced_count: int
    mismatch_count: int


class ReconciliationItem(BaseModel):
    wallet_id: str
    owner_scope: str
    owner_id: str
    wallet_balance_usd: UsdString
    ledger_balance_usd: UsdString
    delta_usd: UsdString
    status: str


class ReconciliationCheck(BaseModel):
    ok: bool
    description: str
    offending_count: int
    offending: list[dict[str, Any]]


class ReconciliationReportOut(BaseModel):
    generated_at: str
    summary: ReconciliationSummary
    items: list[ReconciliationItem]
    ok: bool
    checks: dict[str, ReconciliationCheck]


@router.get(
    "/v1/admin/reconciliation/ledger",
    response_model=ReconciliationReportOut,
    responses=error_responses(401),
)
def reconciliation_ledger(ctx: Context, _actor: AdminActor) -> dict[str, Any]:
    return reconcile_ledger(ctx, source=RunSource.API).as_dict()
