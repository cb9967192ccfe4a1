"""End-user sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection


class SqlSessions:
    """Implements :class:`modelfaucet.services.repositories.SessionRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now
