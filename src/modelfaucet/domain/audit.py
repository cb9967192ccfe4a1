"""What an operation declares for the audit trail: one :class:`AuditEntry` per fact.

A service adds entries to its unit of work (``uow.audit.add(...)``); the unit of work
writes them last, in the same database transaction as the operation's rows, so an audit
row never claims something that was rolled back and the chain lock is held briefly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    action: str
    resource_type: str
    resource_id: str | None = None
    before_status: str | None = None
    after_status: str | None = None
    amount_units: int | None = None
    note: str | None = None
    request_id: str | None = None
    details: dict[str, Any] | None = field(default=None)
