"""Developer tokens (SPEC §17): a developer's own door, so they never need the admin token.

An operator issues a token (``mf_dev_…``) for a developer; it is shown once and stored
only as its SHA-256, and found again by that hash, never by comparing tokens. Listing shows
names and dates (``last_used_at`` to the minute), never a token. A revoked token stays
listed with its ``revoked_at`` and opens nothing. Every issue and revoke is declared to the
audit trail with the operator's name (never any part of the token).

:func:`authenticate_developer` is the one check of a presented token: missing, malformed,
unknown, revoked, or of a developer who is not ``active`` — the caller cannot tell which
(one refusal, one message). A token opens the ``/v1/developer/*`` routes of its developer
and a portal session (which lives only as long as the token does), nothing else.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field, replace

from ..domain.audit import AuditEntry
from ..domain.identity import new_id, token_hash
from ..domain.outcomes import InvalidRequest, InvalidSession, NotFound
from ..domain.timestamps import as_utc
from .app_secret_keys import LAST_USED_RESOLUTION
from .catalog import require_developer
from .context import Actor, ServiceContext
from .repositories import DeveloperTokenRecord

TOKEN_PREFIX = "mf_dev_"  # noqa: S105 - a public prefix, not a secret
# 32 random bytes, URL-safe base64: 43 characters after the prefix.
_TOKEN_PATTERN = re.compile(r"^mf_dev_[A-Za-z0-9_-]{20,128}$")
DEVELOPER_TOKEN_REQUIRED = "A valid developer token is required."  # noqa: S105 - a message
DEVELOPER_TOKEN_NOT_FOUND = "Developer token was not found."  # noqa: S105 - a message
RESOURCE_TYPE = "developer_token"


@dataclass(frozen=True, slots=True)
class DeveloperTokenIssued:
    """The new token's record, and the token itself: the only time anyone sees it."""

    record: DeveloperTokenRecord
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class DeveloperPrincipal:
    """Who a valid developer token speaks for."""

    developer_id: str
    token_id: str
    request_id: str | None = None

    @property
    def actor(self) -> Actor:
        """The audit trail's name for what the developer does themselves."""
        return Actor(name=f"developer:{self.developer_id}", request_id=self.request_id)


def new_developer_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def issue_developer_token(ctx: ServiceContext, actor: Actor, *, developer_id: str, name: str) -> DeveloperTokenIssued:
    if not name.strip():
        raise InvalidRequest("name must not be blank.", details={"field": "name"})
    token = new_developer_token()
    with ctx.unit_of_work() as uow:
        require_developer(uow, developer_id)
        record = DeveloperTokenRecord(new_id(), developer_id, name, uow.now)
        if not uow.developers.add_token(record, token_hash=token_hash(token)):
            raise RuntimeError("a freshly drawn developer token collided with a stored one")
        uow.audit.add(
            AuditEntry(
                actor=actor.name,
                action="developer_token.create",
                resource_type=RESOURCE_TYPE,
                resource_id=record.id,
                after_status="active",
                request_id=actor.request_id,
                details={"developer_id": developer_id, "name": name},
            )
        )
        uow.commit()
    return DeveloperTokenIssued(record, token)


def list_developer_tokens(ctx: ServiceContext, *, developer_id: str) -> list[DeveloperTokenRecord]:
    with ctx.reader() as uow:
        require_developer(uow, developer_id)
        return uow.developers.tokens(developer_id)


def revoke_developer_token(
    ctx: ServiceContext, actor: Actor, *, developer_id: str, token_id: str
) -> DeveloperTokenRecord:
    """Revoke the token; revoking a revoked token changes nothing and is not audited again."""
    with ctx.unit_of_work() as uow:
        require_developer(uow, developer_id)
        record = uow.developers.get_token(developer_id, token_id)
        if record is None:
            raise NotFound(DEVELOPER_TOKEN_NOT_FOUND, details={"id": token_id})
        if uow.developers.revoke_token(record.id):
            uow.audit.add(
                AuditEntry(
                    actor=actor.name,
                    action="developer_token.revoke",
                    resource_type=RESOURCE_TYPE,
                    resource_id=record.id,
                    before_status="active",
                    after_status="revoked",
                    request_id=actor.request_id,
                    details={"developer_id": developer_id, "name": record.name},
                )
            )
            record = replace(record, revoked_at=uow.now)
        uow.commit()
    return record


def authenticate_developer(
    ctx: ServiceContext, presented: str | None, *, request_id: str | None = None
) -> DeveloperPrincipal:
    """The developer of a presented live token, or InvalidSession.

    ``last_used_at`` is kept to the minute: a token's row is written (in a short unit of
    work of its own) only when its last use is older than that, so a busy token does not
    turn every read into a write.
    """
    digest = token_hash(presented) if presented is not None and _TOKEN_PATTERN.fullmatch(presented) else ""
    with ctx.reader() as uow:
        record = uow.developers.live_token(digest)
    if record is None:
        raise InvalidSession(DEVELOPER_TOKEN_REQUIRED)
    stale_before = ctx.clock() - LAST_USED_RESOLUTION
    if record.last_used_at is None or as_utc(record.last_used_at) < stale_before:
        with ctx.unit_of_work() as uow:
            uow.developers.mark_token_used(record.id, unless_used_since=uow.now - LAST_USED_RESOLUTION)
            uow.commit()
    return DeveloperPrincipal(developer_id=record.developer_id, token_id=record.id, request_id=request_id)
