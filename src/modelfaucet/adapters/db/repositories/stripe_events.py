"""Received Stripe events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection


class SqlStripeEvents:
    """Implements :class:`modelfaucet.services.repositories.StripeEventRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now
