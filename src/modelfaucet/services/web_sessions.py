"""Web sessions of the operator console and the developer portal (SPEC §21).

Signing in exchanges a token for a session: an operator or admin token (compared in
constant time with every configured one) for ``/console``, a developer token
(:func:`~modelfaucet.services.developer_tokens.authenticate_developer`) for ``/portal``.
The token is not kept anywhere. The browser gets a fresh random session id; the database
keeps only its SHA-256, who signed in, the session's CSRF secret and its times.

A session ends when it is signed out (its row deleted), after ``web_session_idle_seconds``
without a request, or ``web_session_max_seconds`` after signing in, whichever comes first;
an operator's session also ends once their name is no longer among the configured tokens.
``last_seen_at`` is written at most once a minute, so reading pages does not turn every
request into a write.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from ..domain.identity import token_hash
from ..domain.outcomes import InvalidSession
from ..domain.timestamps import as_utc
from ..domain.web_sessions import Principal
from .context import Actor, ServiceContext
from .developer_tokens import authenticate_developer
from .repositories import WebSessionRecord

__all__ = ["Principal", "WebSession", "WebSessionIssued", "open_session", "sign_in", "sign_out"]

SIGN_IN_REFUSED = "That token was not accepted. Check it and try again."
SESSION_ENDED = "Your session has ended. Please sign in again."
TOUCH_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class WebSessionIssued:
    """A new session: ``session_id`` goes into the cookie and nowhere else."""

    session_id: str = field(repr=False)
    principal: Principal
    subject: str
    csrf_token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class WebSession:
    """A live session, as a page sees it."""

    principal: Principal
    subject: str
    csrf_token: str = field(repr=False)

    def actor(self, request_id: str | None = None) -> Actor:
        """The audit trail's name: the operator's own name, or ``developer:<id>``."""
        if self.principal is Principal.OPERATOR:
            return Actor(name=self.subject, request_id=request_id)
        return Actor(name=f"developer:{self.subject}", request_id=request_id)


def _operator_named_by(ctx: ServiceContext, presented: str) -> str | None:
    given = presented.encode()
    matched: str | None = None
    # Compare against every configured token so timing does not reveal which one matched.
    for name, token in ctx.settings.operator_credentials():
        if hmac.compare_digest(given, token.encode()) and matched is None:
            matched = name
    return matched


def sign_in(ctx: ServiceContext, principal: Principal, presented: str) -> WebSessionIssued:
    """A new session for the holder of ``presented``, or InvalidSession (one message for all)."""
    presented = presented.strip(" \t\r\n")
    subject: str | None
    if principal is Principal.OPERATOR:
        subject = _operator_named_by(ctx, presented) if presented else None
    else:
        try:
            subject = authenticate_developer(ctx, presented or None).developer_id
        except InvalidSession:
            subject = None
    if subject is None:
        raise InvalidSession(SIGN_IN_REFUSED)
    session_id = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    settings = ctx.settings
    with ctx.unit_of_work() as uow:
        uow.web_sessions.delete_idle(last_seen_before=uow.now - timedelta(seconds=settings.web_session_idle_seconds))
        uow.web_sessions.add(
            WebSessionRecord(
                id_hash=token_hash(session_id),
                principal=principal.value,
                subject=subject,
                csrf_secret=csrf_token,
                created_at=uow.now,
                last_seen_at=uow.now,
                expires_at=uow.now + timedelta(seconds=settings.web_session_max_seconds),
            )
        )
        uow.commit()
    return WebSessionIssued(session_id, principal, subject, csrf_token)


def open_session(ctx: ServiceContext, principal: Principal, session_id: str | None) -> WebSession:
    """The live session of this id and principal, or InvalidSession (ended, unknown, other door)."""
    if not session_id or len(session_id) > 200:
        raise InvalidSession(SESSION_ENDED)
    id_hash = token_hash(session_id)
    with ctx.reader() as uow:
        record = uow.web_sessions.get(id_hash)
    now = ctx.clock()
    if record is None or record.principal != principal.value:
        raise InvalidSession(SESSION_ENDED)
    idle_since = now - timedelta(seconds=ctx.settings.web_session_idle_seconds)
    # An operator whose token is no longer configured is signed out at their next request.
    withdrawn = principal is Principal.OPERATOR and record.subject not in {
        name for name, _ in ctx.settings.operator_credentials()
    }
    if withdrawn or as_utc(record.expires_at) <= now or as_utc(record.last_seen_at) < idle_since:
        with ctx.unit_of_work() as uow:
            uow.web_sessions.delete(id_hash)
            uow.commit()
        raise InvalidSession(SESSION_ENDED)
    if as_utc(record.last_seen_at) < now - TOUCH_RESOLUTION:
        with ctx.unit_of_work() as uow:
            uow.web_sessions.touch(id_hash)
            uow.commit()
    return WebSession(Principal(record.principal), record.subject, record.csrf_secret)


def sign_out(ctx: ServiceContext, session_id: str | None) -> bool:
    """End the session server-side; False if there was none."""
    if not session_id or len(session_id) > 200:
        return False
    with ctx.unit_of_work() as uow:
        ended = uow.web_sessions.delete(token_hash(session_id))
        uow.commit()
    return ended
