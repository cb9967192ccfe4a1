"""An app's secret keys (SPEC §4): the credential its backend mints end-user sessions with.

An operator issues a key (``mf_app_sk_…``), which is shown once and stored only as its
SHA-256; a key is found again by that hash, never by comparing keys. Listing shows names
and dates, never a key. A revoked key stays listed with its ``revoked_at`` and opens
nothing. Every issue and revoke is declared to the audit trail with the operator's name
(never any part of the key).

:func:`require_app_key` is the one check of a presented key: unknown, revoked, or another
app's — the caller cannot tell which (one refusal, one message, the same queries).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import timedelta

from ..domain.audit import AuditEntry
from ..domain.identity import new_id, token_hash
from ..domain.outcomes import InvalidRequest, InvalidSession, NotFound
from .catalog import require_app
from .context import Actor, ServiceContext
from .repositories import AppRecord, AppSecretKeyRecord
from .unit_of_work import UnitOfWork

SECRET_KEY_PREFIX = "mf_app_sk_"  # noqa: S105 - a public prefix, not a secret
# 32 random bytes, URL-safe base64: 43 characters after the prefix.
_SECRET_KEY_PATTERN = re.compile(r"^mf_app_sk_[A-Za-z0-9_-]{20,128}$")
APP_KEY_REQUIRED = "A valid secret key of this app is required."
APP_KEY_NOT_FOUND = "Secret key was not found."
# ``last_used_at`` is kept to this resolution, so a busy key is not rewritten (and its row
# not locked) by every session it mints.
LAST_USED_RESOLUTION = timedelta(minutes=1)
RESOURCE_TYPE = "app_secret_key"


@dataclass(frozen=True, slots=True)
class SecretKeyIssued:
    """The new key's record, and the key itself: the only time anyone sees it."""

    public_app_id: str
    key: AppSecretKeyRecord
    secret_key: str = field(repr=False)


def new_secret_key() -> str:
    return SECRET_KEY_PREFIX + secrets.token_urlsafe(32)


def require_app_key(uow: UnitOfWork, presented: str | None, public_app_id: str) -> tuple[AppRecord, AppSecretKeyRecord]:
    """The app ``public_app_id`` and the live key of it that was presented, or InvalidSession."""
    digest = token_hash(presented) if presented is not None and _SECRET_KEY_PATTERN.fullmatch(presented) else ""
    key = uow.catalog.live_secret_key(digest)
    app = uow.catalog.get_app(public_app_id)
    if key is None or app is None or key.app_id != app.id:
        raise InvalidSession(APP_KEY_REQUIRED)
    return app, key


def issue_secret_key(ctx: ServiceContext, actor: Actor, *, public_app_id: str, name: str) -> SecretKeyIssued:
    if not name.strip():
        raise InvalidRequest("name must not be blank.", details={"field": "name"})
    secret_key = new_secret_key()
    with ctx.unit_of_work() as uow:
        app = require_app(uow, public_app_id)
        key = AppSecretKeyRecord(new_id(), app.id, name, uow.now)
        if not uow.catalog.add_secret_key(key, key_hash=token_hash(secret_key)):
            raise RuntimeError("a freshly drawn secret key collided with a stored one")
        uow.audit.add(
            AuditEntry(
                actor=actor.name,
                action="app_secret_key.create",
                resource_type=RESOURCE_TYPE,
                resource_id=key.id,
                after_status="active",
                request_id=actor.request_id,
                details={"public_app_id": public_app_id, "name": name},
            )
        )
        uow.commit()
    return SecretKeyIssued(public_app_id, key, secret_key)


def list_secret_keys(ctx: ServiceContext, *, public_app_id: str) -> list[AppSecretKeyRecord]:
    with ctx.reader() as uow:
        app = require_app(uow, public_app_id)
        return uow.catalog.secret_keys(app.id)


def revoke_secret_key(ctx: ServiceContext, actor: Actor, *, public_app_id: str, key_id: str) -> AppSecretKeyRecord:
    """Revoke the key; revoking a revoked key changes nothing and is not audited again."""
    with ctx.unit_of_work() as uow:
        app = require_app(uow, public_app_id)
        key = uow.catalog.get_secret_key(app.id, key_id)
        if key is None:
            raise NotFound(APP_KEY_NOT_FOUND, details={"id": key_id})
        if uow.catalog.revoke_secret_key(key.id):
            uow.audit.add(
                AuditEntry(
                    actor=actor.name,
                    action="app_secret_key.revoke",
                    resource_type=RESOURCE_TYPE,
                    resource_id=key.id,
                    before_status="active",
                    after_status="revoked",
                    request_id=actor.request_id,
                    details={"public_app_id": public_app_id, "name": key.name},
                )
            )
            key = replace(key, revoked_at=uow.now)
        uow.commit()
    return key
