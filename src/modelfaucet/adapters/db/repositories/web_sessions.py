"""Web sessions of /console and /portal: stored by the hash of their id, never the id.

Loading a session also answers whether a portal session's developer token is still live:
one query, the row left-joined to its token and the token's developer.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from ....domain.catalog import CatalogStatus
from ....services.repositories import WebSessionRecord
from ..tables import developer_tokens, developers, web_sessions


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
                developer_token_id=session.developer_token_id,
            )
        )

    def get(self, id_hash: str) -> WebSessionRecord | None:
        token = developer_tokens
        row = self.connection.execute(
            select(
                web_sessions,
                token.c.revoked_at.label("token_revoked_at"),
                token.c.id.label("token_found"),
                developers.c.status.label("developer_status"),
            )
            .select_from(
                web_sessions.outerjoin(
                    token,
                    and_(
                        token.c.id == web_sessions.c.developer_token_id,
                        token.c.developer_id == web_sessions.c.subject,
                    ),
                ).outerjoin(developers, developers.c.id == token.c.developer_id)
            )
            .where(web_sessions.c.id_hash == id_hash)
        ).first()
        if row is None:
            return None
        live = (
            row.token_found is not None
            and row.token_revoked_at is None
            and row.developer_status == CatalogStatus.ACTIVE.value
        )
        return WebSessionRecord(
            row.id_hash,
            row.principal,
            row.subject,
            row.csrf_secret,
            row.created_at,
            row.last_seen_at,
            row.expires_at,
            developer_token_id=row.developer_token_id,
            developer_token_live=live,
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
