"""Web sessions of the operator console and the developer portal (SPEC §21).

Signing in exchanges a token for a session: an operator or admin token (compared in
constant time with every configured one) for ``/console``, a developer token
(:func:`~modelfaucet.services.developer_tokens.authenticate_developer`) for ``/portal``.
The token is not kept anywhere. The browser gets a fresh random session id; the database
keeps only its SHA-256, who signed in, the session's CSRF secret and its times — and, for
a portal session, the id of the developer token it was opened with.

A session ends when it is signed out (its row deleted), after ``web_session_idle_seconds``
without a request, or ``web_session_max_seconds`` after signing in, whichever comes first;
an operator's session also ends once their name is no longer among the configured tokens,
and a developer's session as soon as the token it was opened with is revoked or the
developer is no longer ``active`` (checked in the same query that loads the session; a
developer session that does not know its token is ended too). ``last_seen_at`` is written
at most once a minute, so reading pages does not turn every request into a write.

Every sign-in, refused sign-in and sign-out is declared to the audit trail
(``web_session.sign_in``, ``web_session.sign_in_refused``, ``web_session.sign_out``), never
with any part of the token presented. A refused sign-in is written as ``anonymous``.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from ..domain.audit import AuditEntry
from ..domain.identity import token_hash
from ..domain.outcomes import InvalidSession
from ..domain.timestamps import as_utc
from ..domain.web_sessions import Principal
from .context import Actor, ServiceContext
from .developer_tokens import authenticate_developer
from .repositories import WebSessionRecord

__all__ = ["Principal", "WebSession", "WebSessionIssued", "open_session", "sign_in", "sign_out"]

RESOURCE_TYPE = "web_session"
SIGN_IN = "web_session.sign_in"
SIGN_IN_REFUSED_ACTION = "web_session.sign_in_refused"
SIGN_OUT = "web_session.sign_out"
ANONYMOUS = "anonymous"

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
        return Actor(name=_actor_name(self.principal.value, self.subject), request_id=request_id)


def _operator_named_by(ctx: ServiceContext, presented: str) -> str | None:
    given = presented.encode()
    matched: str | None = None
    # Compare against every configured token so timing does not reveal which one matched.
    for name, token in ctx.settings.operator_credentials():
        if hmac.compare_digest(given, token.encode()) and matched is None:
            matched = name
    return matched


def _actor_name(principal: str, subject: str) -> str:
    """The audit trail's name for the holder of a session (as :meth:`WebSession.actor`)."""
    return subject if principal == Principal.OPERATOR.value else f"developer:{subject}"


def _refused(ctx: ServiceContext, principal: Principal, request_id: str | None) -> InvalidSession:
    """Declare a refused sign-in (who tried is unknown; nothing of what was presented is kept)."""
    with ctx.unit_of_work() as uow:
        uow.audit.add(
            AuditEntry(
                actor=ANONYMOUS,
                action=SIGN_IN_REFUSED_ACTION,
                resource_type=RESOURCE_TYPE,
                request_id=request_id,
                details={"principal": principal.value},
            )
        )
        uow.commit()
    return InvalidSession(SIGN_IN_REFUSED)


def sign_in(
    ctx: ServiceContext, principal: Principal, presented: str, *, request_id: str | None = None
) -> WebSessionIssued:
    """A new session for the holder of ``presented``, or InvalidSession (one message for all)."""
    presented = presented.strip(" \t\r\n")
    subject: str | None
    developer_token_id: str | None = None
    if principal is Principal.OPERATOR:
        subject = _operator_named_by(ctx, presented) if presented else None
    else:
        try:
            developer = authenticate_developer(ctx, presented or None)
        except InvalidSession:
            subject = None
        else:
            subject, developer_token_id = developer.developer_id, developer.token_id
    if subject is None:
        raise _refused(ctx, principal, request_id)
    session_id = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    id_hash = token_hash(session_id)
    settings = ctx.settings
    with ctx.unit_of_work() as uow:
        uow.web_sessions.delete_idle(last_seen_before=uow.now - timedelta(seconds=settings.web_session_idle_seconds))
        uow.web_sessions.add(
            WebSessionRecord(
                id_hash=id_hash,
                principal=principal.value,
                subject=subject,
                csrf_secret=csrf_token,
                created_at=uow.now,
                last_seen_at=uow.now,
                expires_at=uow.now + timedelta(seconds=settings.web_session_max_seconds),
                developer_token_id=developer_token_id,
            )
        )
        details: dict[str, str] = {"principal": principal.value}
        if developer_token_id is not None:
            details["developer_token_id"] = developer_token_id
        uow.audit.add(
            AuditEntry(
                actor=_actor_name(principal.value, subject),
                action=SIGN_IN,
                resource_type=RESOURCE_TYPE,
                resource_id=id_hash,
                after_status="active",
                request_id=request_id,
                details=details,
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
    if principal is Principal.OPERATOR:
        # An operator whose token is no longer configured is signed out at their next request.
        withdrawn = record.subject not in {name for name, _ in ctx.settings.operator_credentials()}
    else:
        # A developer whose token was revoked (or who is no longer active) likewise; so is a
        # session that does not know its token (opened before tokens were recorded).
        withdrawn = not record.developer_token_live
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


def sign_out(ctx: ServiceContext, session_id: str | None, *, request_id: str | None = None) -> bool:
    """End the session server-side (audited as its holder); False if there was none."""
    if not session_id or len(session_id) > 200:
        return False
    id_hash = token_hash(session_id)
    with ctx.unit_of_work() as uow:
        record = uow.web_sessions.get(id_hash)
        ended = record is not None and uow.web_sessions.delete(id_hash)
        if record is not None and ended:
            uow.audit.add(
                AuditEntry(
                    actor=_actor_name(record.principal, record.subject),
                    action=SIGN_OUT,
                    resource_type=RESOURCE_TYPE,
                    resource_id=id_hash,
                    before_status="active",
                    after_status="ended",
                    request_id=request_id,
                    details={"principal": record.principal},
                )
            )
        uow.commit()
    return ended
