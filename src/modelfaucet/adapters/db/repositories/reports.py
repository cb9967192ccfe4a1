"""Read-only queries behind reports, reconciliation and listings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection


class SqlReports:
    """Implements :class:`modelfaucet.services.repositories.ReportRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now
