"""Usage events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection


class SqlUsage:
    """Implements :class:`modelfaucet.services.repositories.UsageRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now
