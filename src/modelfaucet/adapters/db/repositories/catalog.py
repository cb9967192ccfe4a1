"""Developers, apps, features, model prices and end users."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from ..end_users import ensure_end_user


class SqlCatalog:
    """Implements :class:`modelfaucet.services.repositories.CatalogRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    def ensure_end_user(self, app_id: str, external_user_id: str) -> str:
        return ensure_end_user(self.connection, app_id, external_user_id, now=self.now)
