"""Web sessions of /console and /portal: stored by the hash of their id, never the id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, or_, select, update

from ....services.repositories import WebSessionRecord
from ..tables import web_sessions


class SqlWebSessions:
    """Implements :class:`modelfaucet.services.repositories.WebSessionRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    def add(self, session: WebSessionRecord) -> None:
        self.connection.execute(
            insert(web_sessions).values(
                id_hash=session.id_hash,
                principal=session.principal,
                subject=session.subject,
                csrf_secret=session.csrf_secret,
                created_at=session.created_at,
                last_seen_at=session.last_seen_at,
                expires_at=session.expires_at,
            )
        )

    def get(self, id_hash: str) -> WebSessionRecord | None:
        row = self.connection.execute(select(web_sessions).where(web_sessions.c.id_hash == id_hash)).first()
        if row is None:
            return None
        return WebSessionRecord(
            row.id_hash, row.principal, row.subject, row.csrf_secret, row.created_at, row.last_seen_at, row.expires_at
        )

    def touch(self, id_hash: str) -> None:
        self.connection.execute(
            update(web_sessions).where(web_sessions.c.id_hash == id_hash).values(last_seen_at=self.now)
        )

    def delete(self, id_hash: str) -> bool:
        result = self.connection.execute(delete(web_sessions).where(web_sessions.c.id_hash == id_hash))
        return bool(result.rowcount)

    def delete_idle(self, *, last_seen_before: datetime) -> int:
        result = self.connection.execute(
            delete(web_sessions).where(
                or_(web_sessions.c.last_seen_at < last_seen_before, web_sessions.c.expires_at <= self.now)
            )
        )
        return int(result.rowcount or 0)
