"""Stripe Checkout top-ups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection


class SqlTopups:
    """Implements :class:`modelfaucet.services.repositories.TopupRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now
