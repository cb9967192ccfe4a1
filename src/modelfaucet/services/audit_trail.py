"""Reading the audit trail for operators (``GET /v1/admin/audit-log``).

Newest first, paged by id: pass the last page's ``next_before_id`` as ``before_id``.
Filters combine with AND; ``from`` is inclusive and ``to`` exclusive (:class:`AuditQuery`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .context import ServiceContext
from .repositories import AuditQuery, AuditRecord

__all__ = ["AuditPage", "AuditQuery", "list_audit_entries"]


@dataclass(frozen=True, slots=True)
class AuditPage:
    items: tuple[AuditRecord, ...]
    next_before_id: int | None  # None on the last page


def list_audit_entries(ctx: ServiceContext, query: AuditQuery) -> AuditPage:
    with ctx.reader() as uow:
        rows = uow.reports.audit_entries(query)
    page = rows[: query.limit]
    more = len(rows) > query.limit
    return AuditPage(items=tuple(page), next_before_id=page[-1].id if more and page else None)
