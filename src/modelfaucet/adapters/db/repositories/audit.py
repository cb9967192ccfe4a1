"""The audit log as a unit of work sees it: entries collected, written last."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy import Connection

from ....domain.audit import AuditEntry
from .. import audit


class SqlAuditLog:
    """Implements :class:`modelfaucet.services.repositories.AuditLog`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now
        self.pending: list[AuditEntry] = []

    def add(self, entry: AuditEntry) -> None:
        self.pending.append(entry)

    def flush(self) -> None:
        """Chain and insert the collected entries (the unit of work calls this last)."""
        for entry in self.pending:
            audit.record(self.connection, now=self.now, **asdict(entry))
        self.pending.clear()
