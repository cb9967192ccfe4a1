"""Reading the audit trail for operators (``GET /v1/admin/audit-log``).

Newest first, paged by id: pass the last page's ``next_before_id`` as ``before_id``.
Filters combine with AND; ``from`` is inclusive and ``to`` exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select

from ..adapters.db.tables import audit_log
from ..domain.money import format_usd
from .context import ServiceContext
from .formatting import iso


@dataclass(frozen=True, slots=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    before_id: int | None = None
    limit: int = 100


def list_audit_entries(ctx: ServiceContext, query: AuditQuery) -> dict[str, Any]:
    c = audit_log.c
    conditions = []
    if query.actor is not None:
        conditions.append(c.actor == query.actor)
    if query.action is not None:
        conditions.append(c.action == query.action)
    if query.resource_type is not None:
        conditions.append(c.resource_type == query.resource_type)
    if query.resource_id is not None:
        conditions.append(c.resource_id == query.resource_id)
    if query.start is not None:
        conditions.append(c.created_at >= query.start)
    if query.end is not None:
        conditions.append(c.created_at < query.end)
    if query.before_id is not None:
        conditions.append(c.id < query.before_id)
    stmt = select(audit_log).order_by(c.id.desc()).limit(query.limit + 1)
    if conditions:
        stmt = stmt.where(and_(*conditions))
    with ctx.db.read() as conn:
        rows = conn.execute(stmt).all()
    page = rows[: query.limit]
    more = len(rows) > query.limit
    return {
        "items": [audit_entry(row) for row in page],
        "next_before_id": int(page[-1].id) if more and page else None,
    }


def audit_entry(row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "created_at": iso(row.created_at),
        "actor": row.actor,
        "action": row.action,
        "resource_type": row.resource_type,
        "resource_id": row.resource_id,
        "before_status": row.before_status,
        "after_status": row.after_status,
        "amount_usd": None if row.amount_units is None else format_usd(int(row.amount_units)),
        "note": row.note,
        "request_id": row.request_id,
        "details": row.details or {},
    }
