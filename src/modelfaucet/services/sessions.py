"""End-user sessions (SPEC §4): create_session and authenticate_session.

An app's backend asks for a session for one of its users, presenting the app's secret key
(``mf_app_sk_…``, see :mod:`.app_secret_keys`), and hands the session token to its client.
The first time a user is seen, the end user and their wallet are created. The external
user id is stored only as a per-app hash, the ``mf_sess_…`` token only as a hash, with an
expiry of ``session_ttl_seconds``.

Refusals of ``create_session``, in order: the external id's shape, then the app's key (401,
the same answer for an unknown app, an unknown, revoked or other app's key), the app
being active, the feature existing for the app.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..domain.catalog import APP_NOT_ACTIVE, FEATURE_NOT_FOUND, CatalogStatus, check_external_user_id
from ..domain.identity import new_id, token_hash
from ..domain.ledger import OwnerScope
from ..domain.outcomes import ExpiredSession, InvalidSession, NotFound
from ..domain.timestamps import as_utc
from .app_secret_keys import LAST_USED_RESOLUTION, require_app_key
from .context import ServiceContext
from .repositories import SessionRecord

TOKEN_PREFIX = "mf_sess_"  # noqa: S105 - a public prefix, not a secret
# 32 random bytes, URL-safe base64: 43 characters after the prefix.
_TOKEN_PATTERN = re.compile(r"^mf_sess_[A-Za-z0-9_-]{20,128}$")
SESSION_REQUIRED = "A valid session token is required."
SESSION_EXPIRED = "The session has expired; create a new one."
SESSION_APP_NOT_ACTIVE = "The session's app is not active."


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
    token: str = field(repr=False)
    user: SessionUser


def create_session(
    ctx: ServiceContext,
    *,
    secret_key: str | None,
    public_app_id: str,
    external_user_id: str,
    feature_key: str | None = None,
) -> CreatedSession:
    """Issue a session token for ``external_user_id`` of an active app, to a holder of its key."""
    check_external_user_id(external_user_id)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with ctx.unit_of_work() as uow:
        app, key = require_app_key(uow, secret_key, public_app_id)
        if app.status is not CatalogStatus.ACTIVE:
            raise NotFound(APP_NOT_ACTIVE, details={"public_app_id": public_app_id})
        if feature_key is not None and not uow.catalog.has_feature(app.id, feature_key):
            raise NotFound(FEATURE_NOT_FOUND, details={"feature_key": feature_key})
        end_user_id = uow.catalog.ensure_end_user(app.id, external_user_id)
        account_id = uow.ledger.ensure(OwnerScope.END_USER, end_user_id)
        session = SessionRecord(
            id=new_id(),
            token_hash=token_hash(token),
            end_user_id=end_user_id,
            app_id=app.id,
            feature_key=feature_key,
            expires_at=uow.now + timedelta(seconds=ctx.settings.session_ttl_seconds),
        )
        uow.sessions.add(session)
        uow.catalog.mark_secret_key_used(key.id, unless_used_since=uow.now - LAST_USED_RESOLUTION)
        uow.commit()
    user = SessionUser(
        session_id=session.id,
        end_user_id=end_user_id,
        app_id=app.id,
        public_app_id=public_app_id,
        account_id=account_id,
        feature_key=feature_key,
        expires_at=session.expires_at,
    )
    return CreatedSession(token=token, user=user)


def authenticate_session(ctx: ServiceContext, token: str | None) -> SessionUser:
    """The user of a presented token; InvalidSession if unknown, ExpiredSession if past expiry."""
    if token is None or not _TOKEN_PATTERN.fullmatch(token):
        raise InvalidSession(SESSION_REQUIRED)
    digest = token_hash(token)
    with ctx.reader() as uow:
        found = uow.sessions.by_token_hash(digest)
        # The lookup is by hash; compare again in constant time for good measure.
        if found is None or not hmac.compare_digest(found.session.token_hash, digest):
            raise InvalidSession(SESSION_REQUIRED)
        session = found.session
        if as_utc(session.expires_at) <= ctx.clock():
            raise ExpiredSession(SESSION_EXPIRED)
        if found.app_status is not CatalogStatus.ACTIVE:
            raise InvalidSession(SESSION_APP_NOT_ACTIVE)
        account_id = uow.ledger.id_for(OwnerScope.END_USER, session.end_user_id)
    if account_id is None:
        raise InvalidSession(SESSION_REQUIRED)
    return SessionUser(
        session_id=session.id,
        end_user_id=session.end_user_id,
        app_id=session.app_id,
        public_app_id=found.public_app_id,
        account_id=account_id,
        feature_key=session.feature_key,
        expires_at=as_utc(session.expires_at),
    )
