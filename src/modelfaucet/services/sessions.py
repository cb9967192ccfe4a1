"""End-user sessions (SPEC §4): create_session and authenticate_session.

An app's SDK asks for a session for one of its users; the first time a user is seen, the
end user and their wallet are created. The external user id is stored only as a per-app
hash, the ``mf_sess_…`` token only as a hash, with an expiry of ``session_ttl_seconds``.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, select

from ..adapters.db import ledger
from ..adapters.db.end_users import ensure_end_user
from ..adapters.db.tables import app_features, apps, user_sessions
from ..domain.identity import new_id, token_hash
from ..domain.ledger import OwnerScope
from ..domain.outcomes import FEATURE_NOT_FOUND, ExpiredSession, InvalidRequest, InvalidSession, NotFound
from .context import ServiceContext
from .formatting import as_utc

TOKEN_PREFIX = "mf_sess_"  # noqa: S105 - a public prefix, not a secret
# 32 random bytes, URL-safe base64: 43 characters after the prefix.
_TOKEN_PATTERN = re.compile(r"^mf_sess_[A-Za-z0-9_-]{20,128}$")


@dataclass(frozen=True)
class SessionUser:
    """The end user behind a valid session token.

    ``account_id`` is the end user's wallet id; ``feature_key`` is the feature the session
    was opened for (``None`` when the app did not name one).
    """

    session_id: str
    end_user_id: str
    app_id: str
    public_app_id: str
    account_id: str
    feature_key: str | None
    expires_at: datetime


@dataclass(frozen=True)
class CreatedSession:
    token: str
    user: SessionUser


def create_session(
    ctx: ServiceContext, *, public_app_id: str, external_user_id: str, feature_key: str | None
) -> CreatedSession:
    """Issue a session token for ``external_user_id`` of an active app."""
    if not external_user_id or len(external_user_id) > 256:
        raise InvalidRequest("external_user_id must be 1 to 256 characters.", details={"field": "external_user_id"})
    now = ctx.clock()
    expires_at = now + timedelta(seconds=ctx.settings.session_ttl_seconds)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with ctx.db.transaction() as conn:
        app = conn.execute(select(apps.c.id, apps.c.status).where(apps.c.public_app_id == public_app_id)).first()
        if app is None or app.status != "active":
            raise NotFound("App was not found or is not active.", details={"public_app_id": public_app_id})
        if feature_key is not None:
            feature = conn.execute(
                select(app_features.c.id).where(
                    and_(app_features.c.app_id == app.id, app_features.c.feature_key == feature_key)
                )
            ).first()
            if feature is None:
                raise NotFound(FEATURE_NOT_FOUND, details={"feature_key": feature_key})
        end_user_id = ensure_end_user(conn, app.id, external_user_id, now=now)
        account_id = ledger.ensure_account(conn, ctx.db.insert, OwnerScope.END_USER, end_user_id, now=now)
        session_id = new_id()
        conn.execute(
            user_sessions.insert().values(
                id=session_id,
                token_hash=token_hash(token),
                end_user_id=end_user_id,
                app_id=app.id,
                feature_key=feature_key,
                created_at=now,
                expires_at=expires_at,
            )
        )
    user = SessionUser(
        session_id=session_id,
        end_user_id=end_user_id,
        app_id=app.id,
        public_app_id=public_app_id,
        account_id=account_id,
        feature_key=feature_key,
        expires_at=expires_at,
    )
    return CreatedSession(token=token, user=user)


def authenticate_session(ctx: ServiceContext, token: str | None) -> SessionUser:
    """The user of a presented token; InvalidSession if unknown, ExpiredSession if past expiry."""
    if token is None or not _TOKEN_PATTERN.fullmatch(token):
        raise InvalidSession("A valid session token is required.")
    digest = token_hash(token)
    with ctx.db.read() as conn:
        row = conn.execute(
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
            .where(user_sessions.c.token_hash == digest)
        ).first()
        # The lookup is by hash; compare again in constant time for good measure.
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            raise InvalidSession("A valid session token is required.")
        if as_utc(row.expires_at) <= ctx.clock():
            raise ExpiredSession("The session has expired; create a new one.")
        if row.app_status != "active":
            raise InvalidSession("The session's app is not active.")
        account_id = ledger.account_id_for(conn, OwnerScope.END_USER, row.end_user_id)
    if account_id is None:
        raise InvalidSession("A valid session token is required.")
    return SessionUser(
        session_id=row.id,
        end_user_id=row.end_user_id,
        app_id=row.app_id,
        public_app_id=row.public_app_id,
        account_id=account_id,
        feature_key=row.feature_key,
        expires_at=as_utc(row.expires_at),
    )
