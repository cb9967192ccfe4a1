"""Admin: the audit trail (SPEC §15)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from ...domain.money import format_usd
from ...domain.timestamps import iso
from ...services.audit_trail import AuditQuery, list_audit_entries
from ...services.reports import check_bounds, parse_time_bound
from ...services.repositories import AuditRecord
from ..deps import AdminActor, Context
from ..schemas import UsdString, error_responses

router = APIRouter(tags=["audit"])

_TIME_HELP = "ISO-8601 date or time (UTC if no offset); from is inclusive, to exclusive."


class AuditEntry(BaseModel):
    id: int
    created_at: str
    actor: str
    action: str
    resource_type: str
    resource_id: str | None
    before_status: str | None
    after_status: str | None
    amount_usd: UsdString | None
    note: str | None
    request_id: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, entry: AuditRecord) -> AuditEntry:
        return cls(
            id=entry.id,
            created_at=iso(entry.created_at),
            actor=entry.actor,
            action=entry.action,
            resource_type=entry.resource_type,
            resource_id=entry.resource_id,
            before_status=entry.before_status,
            after_status=entry.after_status,
            amount_usd=None if entry.amount_units is None else format_usd(entry.amount_units),
            note=entry.note,
            request_id=entry.request_id,
            details=entry.details,
        )


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_before_id: int | None


@router.get("/v1/admin/audit-log", response_model=AuditPage, responses=error_responses(400, 401))
def audit_log(
    *,
    ctx: Context,
    _actor: AdminActor,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    resource_type: Annotated[str | None, Query(max_length=32)] = None,
    resource_id: Annotated[str | None, Query(max_length=128)] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=64, description=_TIME_HELP)] = None,
    to: Annotated[str | None, Query(max_length=64, description=_TIME_HELP)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Page cursor: next_before_id.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    start = parse_time_bound(from_, field="from")
    end = parse_time_bound(to, field="to")
    check_bounds(start, end)
    page = list_audit_entries(
        ctx,
        AuditQuery(
            actor=actor,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            start=start,
            end=end,
            before_id=before_id,
            limit=limit,
        ),
    )
    return AuditPage(items=[AuditEntry.of(entry) for entry in page.items], next_before_id=page.next_before_id)
