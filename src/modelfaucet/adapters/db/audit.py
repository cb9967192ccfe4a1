"""Audit trail writer: one row per admin write or money transition, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from .tables import audit_log


def record(
    connection: Connection,
    *,
    now: datetime,
    actor: str,
    action: str,
    resource_type: str,
    resource_id: str | None = None,
    before_status: str | None = None,
    after_status: str | None = None,
    amount_units: int | None = None,
    note: str | None = None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    connection.execute(
        insert(audit_log).values(
            created_at=now,
            actor=actor,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            before_status=before_status,
            after_status=after_status,
            amount_units=amount_units,
            note=note,
            request_id=request_id,
            details=details,
        )
    )
