"""verify_audit_chain: chain what has committed, recompute the audit log's hash chain and
name the first broken row.

Audit rows are written unchained with their action and chained right after it commits
(``adapters/db/audit.py``). Verification first chains whatever is still unchained (a crash
between an action's commit and its chaining leaves such rows), then walks the chain in
chain order. It fails on a row whose content no longer gives its hash (edited), on a
``prev_hash`` that is not the previous position's hash or a gap in the positions (a row
deleted, inserted or reordered), and on rows older than ``unchained_grace`` that are still
unchained after that (with ``chain_first=False``, for a read-only check, they are found
rather than chained): an audit row nobody has chained is a finding, never a silent pass.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from .context import ServiceContext
from .repositories import ReportRepository

BATCH_SIZE = 1000
UNCHAINED_GRACE = timedelta(minutes=5)
PREV_HASH_BROKEN = "prev_hash does not match the previous row's hash (a row was deleted, inserted or reordered)"
ROW_HASH_BROKEN = "row_hash does not match the row's content (edited)"
POSITION_BROKEN = "chain position is not the next one (a row was deleted, inserted or reordered)"


@dataclass(frozen=True)
class AuditChainReport:
    ok: bool
    checked_count: int
    tail_hash: str
    first_broken_id: int | None = None
    problem: str | None = None
    chained_now: int = 0  # rows this verification chained before walking
    unchained_count: int = 0  # rows older than the grace period still unchained

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked_count": self.checked_count,
            "tail_hash": self.tail_hash,
            "first_broken_id": self.first_broken_id,
            "problem": self.problem,
            "chained_now": self.chained_now,
            "unchained_count": self.unchained_count,
        }


def chain_pending_audit_rows(ctx: ServiceContext) -> int:
    """Chain every committed audit row not chained yet; how many that was."""
    with ctx.unit_of_work() as uow:
        chained = uow.audit.chain_committed()
        uow.commit()
    return chained


def verify_audit_chain(
    ctx: ServiceContext,
    *,
    batch_size: int = BATCH_SIZE,
    chain_first: bool = True,
    unchained_grace: timedelta = UNCHAINED_GRACE,
) -> AuditChainReport:
    chained_now = chain_pending_audit_rows(ctx) if chain_first else 0
    cutoff = ctx.clock() - unchained_grace
    with ctx.reader(snapshot=True) as uow:
        walked = _walk(uow.reports, batch_size)
        unchained, oldest = uow.reports.audit_unchained(cutoff)
    report = replace(walked, chained_now=chained_now, unchained_count=unchained)
    if report.ok and unchained:
        problem = f"{unchained} audit row(s) written before {cutoff.isoformat()} are not chained"
        return replace(report, ok=False, first_broken_id=oldest, problem=problem)
    return report


def _walk(reports: ReportRepository, batch_size: int) -> AuditChainReport:
    """Follow the chain in position order, in batches (constant memory), stopping at the first break."""
    expected_prev = reports.audit_genesis_hash()
    checked = 0
    while True:
        links = reports.audit_chain(after_position=checked, limit=batch_size)
        if not links:
            return AuditChainReport(ok=True, checked_count=checked, tail_hash=expected_prev)
        for link in links:
            if link.position != checked + 1:
                return AuditChainReport(False, checked, expected_prev, link.id, POSITION_BROKEN)
            if link.prev_hash != expected_prev:
                return AuditChainReport(False, checked, expected_prev, link.id, PREV_HASH_BROKEN)
            if link.row_hash != link.content_hash:
                return AuditChainReport(False, checked, expected_prev, link.id, ROW_HASH_BROKEN)
            expected_prev = str(link.row_hash)
            checked += 1
