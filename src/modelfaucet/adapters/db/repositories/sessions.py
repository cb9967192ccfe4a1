"""End-user sessions: stored by the hash of their token, never the token."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select

from ....domain.catalog import CatalogStatus
from ....services.repositories import SessionRecord, StoredSession
from ..tables import apps, user_sessions


class SqlSessions:
    """Implements :class:`modelfaucet.services.repositories.SessionRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    def add(self, session: SessionRecord) -> None:
        self.connection.execute(
            insert(user_sessions).values(
                id=session.id,
                token_hash=session.token_hash,
                end_user_id=session.end_user_id,
                app_id=session.app_id,
                feature_key=session.feature_key,
                created_at=self.now,
                expires_at=session.expires_at,
            )
        )

    def by_token_hash(self, token_hash: str) -> StoredSession | None:
        row = self.connection.execute(
            select(
                user_sessions.c.id,
                user_sessions.c.token_hash,
                user_sessions.c.end_user_id,
                user_sessions.c.app_id,
                user_sessions.c.feature_key,
                user_sessions.c.expires_at,
                apps.c.public_app_id,
                apps.c.status.label("app_status"),
            )
            .join(apps, apps.c.id == user_sessions.c.app_id)
            .where(user_sessions.c.token_hash == token_hash)
        ).first()
        if row is None:
            return None
        session = SessionRecord(row.id, row.token_hash, row.end_user_id, row.app_id, row.feature_key, row.expires_at)
        return StoredSession(session, row.public_app_id, CatalogStatus(row.app_status))
