"""verify_audit_chain: recompute the audit log's hash chain and name the first broken row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .context import ServiceContext
from .repositories import ReportRepository

BATCH_SIZE = 1000
PREV_HASH_BROKEN = "prev_hash does not match the previous row's hash (a row was deleted, inserted or reordered)"
ROW_HASH_BROKEN = "row_hash does not match the row's content (edited)"


@dataclass(frozen=True)
class AuditChainReport:
    ok: bool
    checked_count: int
    tail_hash: str
    first_broken_id: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked_count": self.checked_count,
            "tail_hash": self.tail_hash,
            "first_broken_id": self.first_broken_id,
            "problem": self.problem,
        }


def verify_audit_chain(ctx: ServiceContext, *, batch_size: int = BATCH_SIZE) -> AuditChainReport:
    with ctx.reader() as uow:
        return _walk(uow.reports, batch_size)


def _walk(reports: ReportRepository, batch_size: int) -> AuditChainReport:
    """Follow the log in id order, in batches (constant memory), stopping at the first break."""
    expected_prev = reports.audit_genesis_hash()
    checked = 0
    last_id = -1
    while True:
        links = reports.audit_chain(after_id=last_id, limit=batch_size)
        if not links:
            return AuditChainReport(ok=True, checked_count=checked, tail_hash=expected_prev)
        for link in links:
            if link.prev_hash != expected_prev:
                return AuditChainReport(False, checked, expected_prev, link.id, PREV_HASH_BROKEN)
            if link.row_hash != link.content_hash:
                return AuditChainReport(False, checked, expected_prev, link.id, ROW_HASH_BROKEN)
            expected_prev = str(link.row_hash)
            checked += 1
            last_id = link.id
