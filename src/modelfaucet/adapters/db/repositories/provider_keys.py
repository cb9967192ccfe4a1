"""Encrypted provider keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection


class SqlProviderKeys:
    """Implements :class:`modelfaucet.services.repositories.ProviderKeyRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now
