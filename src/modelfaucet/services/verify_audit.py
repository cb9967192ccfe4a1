"""verify_audit_chain: recompute the audit log's hash chain and name the first broken row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from ..adapters.db.audit import GENESIS_HASH, row_hash
from ..adapters.db.tables import audit_log
from .context import ServiceContext

BATCH_SIZE = 1000


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


def verify_chain(connection: Connection, *, batch_size: int = BATCH_SIZE) -> AuditChainReport:
    """Walk the log in id order, in batches (constant memory), stopping at the first break."""
    expected_prev = GENESIS_HASH
    checked = 0
    last_id = -1
    while True:
        rows = connection.execute(
            select(audit_log).where(audit_log.c.id > last_id).order_by(audit_log.c.id).limit(batch_size)
        ).all()
        if not rows:
            return AuditChainReport(ok=True, checked_count=checked, tail_hash=expected_prev)
        for row in rows:
            fields = dict(row._mapping)
            row_id = int(row.id)
            if row.prev_hash != expected_prev:
                problem = "prev_hash does not match the previous row's hash (a row was deleted, inserted or reordered)"
                return AuditChainReport(False, checked, expected_prev, row_id, problem)
            if row.row_hash != row_hash(fields, expected_prev):
                return AuditChainReport(
                    False, checked, expected_prev, row_id, "row_hash does not match the row's content (edited)"
                )
            expected_prev = str(row.row_hash)
            checked += 1
            last_id = row_id


def verify_audit_chain(ctx: ServiceContext) -> AuditChainReport:
    with ctx.db.read() as conn:
        return verify_chain(conn)
