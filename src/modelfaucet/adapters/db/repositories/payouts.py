"""Payouts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection


class SqlPayouts:
    """Implements :class:`modelfaucet.services.repositories.PayoutRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now
