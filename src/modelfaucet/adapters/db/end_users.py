"""End users: stored per app under a hash of the app's external user id, never in clear."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, select

from ...domain.identity import external_user_hash, new_id
from .bulk import upsert_factory
from .tables import end_users


def ensure_end_user(conn: Connection, app_id: str, external_user_id: str, *, now: datetime) -> str:
    """The id of the app's end user ``external_user_id``, created if new (race-safe)."""
    user_hash = external_user_hash(app_id, external_user_id)
    where = and_(end_users.c.app_id == app_id, end_users.c.external_user_hash == user_hash)
    existing = conn.execute(select(end_users.c.id).where(where)).scalar_one_or_none()
    if existing is not None:
        return str(existing)
    conn.execute(
        upsert_factory(conn)(end_users)
        .values(id=new_id(), app_id=app_id, external_user_hash=user_hash, created_at=now)
        .on_conflict_do_nothing(index_elements=["app_id", "external_user_hash"])
    )
    return str(conn.execute(select(end_users.c.id).where(where)).scalar_one())
