"""The audit log as a unit of work sees it: entries collected, written last, chained after commit."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

from sqlalchemy import Connection

from ....domain.audit import AuditEntry
from .. import audit

_FIELDS = tuple(item.name for item in fields(AuditEntry))


class SqlAuditLog:
    """Implements :class:`modelfaucet.services.repositories.AuditLog`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now
        self.pending: list[AuditEntry] = []
        self.written = 0
        self.chain_locked = False

    def add(self, entry: AuditEntry) -> None:
        self.pending.append(entry)

    def flush(self) -> None:
        """Insert the collected entries, unchained (the unit of work calls this last, and
        has them chained after it commits)."""
        # Field by field, not dataclasses.asdict (a deep copy): entry_row copies the details.
        entries = [{name: getattr(entry, name) for name in _FIELDS} for entry in self.pending]
        rows = [audit.entry_row(now=self.now, **entry) for entry in entries]
        audit.insert_entries(self.connection, rows)
        self.written += len(self.pending)
        self.pending.clear()

    def chain_committed(self) -> int:
        """Chain every committed, unchained row, waiting for the chain lock (in this unit of
        work's transaction: the chain moves when it commits; the unit of work then looks
        again, after it released the lock, for rows of chainers that skipped meanwhile)."""
        audit.lock_chain(self.connection, wait=True)
        self.chain_locked = True
        return audit.chain_pending(self.connection)
