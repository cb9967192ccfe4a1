"""Provider key vault: add, list, delete and (server-side only) open provider API keys.

Three kinds of owner: the platform's own keys and developer keys (managed by operators),
and end users' BYOK keys (managed by the end user through their session). Keys are sealed
with :class:`~modelfaucet.adapters.secretbox.SecretBox` (AES-256-GCM, associated data
``provider_key:<id>``) and only a masked form (``sk-…abcd``) ever leaves this module,
except through :func:`open_provider_key`, which exists for server-side upstream calls and
is never wired to a response.

Refusals are checked in this order: the owner, the provider, the key's shape (prefix,
length, characters — messages never echo the key), ``base_url`` (egress policy), then
``models_allowed``. Every add and delete is written to the audit trail with the actor; the
audit row names the key's id, owner and provider, never any part of the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from ..adapters.db import audit
from ..adapters.db.tables import developers, provider_keys
from ..adapters.egress import EgressPolicy, validate_base_url
from ..adapters.secretbox import SecretBox
from ..domain.identity import new_id
from ..domain.outcomes import Forbidden, InvalidRequest, NotFound
from .context import Actor, ServiceContext
from .formatting import iso

PLATFORM_OWNER_ID = "platform"
OWNER_SCOPES = ("platform", "developer", "end_user")
MAX_MODELS_ALLOWED = 100
_MODEL_NAME = re.compile(r"^[A-Za-z0-9._:/@+\-]{1,128}$")
_KEY_CHARACTERS = re.compile(r"^[A-Za-z0-9_\-.]+$")


@dataclass(frozen=True)
class ProviderRule:
    """What a provider's API keys look like (a basic sanity check, not a liveness check)."""

    provider: str
    prefixes: tuple[str, ...]
    min_length: int
    max_length: int


PROVIDER_RULES: dict[str, ProviderRule] = {
    rule.provider: rule
    for rule in (
        ProviderRule("openai", ("sk-",), 20, 256),
        ProviderRule("anthropic", ("sk-ant-",), 40, 256),
        ProviderRule("openrouter", ("sk-or-",), 30, 256),
        ProviderRule("deepseek", ("sk-",), 20, 256),
        ProviderRule("groq", ("gsk_",), 30, 256),
        ProviderRule("xai", ("xai-",), 30, 256),
        ProviderRule("google", ("AIza",), 39, 39),
        ProviderRule("mistral", (), 32, 64),
        ProviderRule("together", (), 32, 128),
        ProviderRule("mock", ("mock-",), 12, 128),
    )
}


@dataclass(frozen=True)
class KeyOwner:
    scope: str
    owner_id: str


def validate_api_key(provider: str, api_key: str) -> ProviderRule:
    """Refuse an unknown provider or a key that cannot be one of its keys. Never echoes the key."""
    rule = PROVIDER_RULES.get(provider)
    if rule is None:
        raise InvalidRequest(
            f"provider must be one of: {', '.join(sorted(PROVIDER_RULES))}.",
            details={"field": "provider", "allowed": sorted(PROVIDER_RULES)},
        )
    field = {"field": "api_key"}
    if not isinstance(api_key, str) or not api_key:
        raise InvalidRequest("api_key is required.", details=field)
    if any(ch.isspace() for ch in api_key):
        raise InvalidRequest("api_key must not contain whitespace (check for a pasted newline).", details=field)
    if not api_key.isascii() or not _KEY_CHARACTERS.fullmatch(api_key):
        raise InvalidRequest("api_key may contain only letters, digits, '-', '_' and '.'.", details=field)
    if rule.prefixes and not api_key.startswith(rule.prefixes):
        raise InvalidRequest(
            f"api_key does not look like a {provider} key (expected it to start with "
            f"{' or '.join(repr(p) for p in rule.prefixes)}).",
            details=field,
        )
    lookalike = _longest_prefix_owner(api_key)
    if lookalike is not None and lookalike != provider and not _shares_prefix(provider, lookalike, api_key):
        raise InvalidRequest(f"api_key looks like a key for {lookalike}, not for {provider}.", details=field)
    if not rule.min_length <= len(api_key) <= rule.max_length:
        raise InvalidRequest(
            f"api_key length is not valid for {provider} ({rule.min_length} to {rule.max_length} characters expected).",
            details=field,
        )
    return rule


def _longest_prefix_owner(api_key: str) -> str | None:
    best: tuple[int, str] | None = None
    for rule in PROVIDER_RULES.values():
        for prefix in rule.prefixes:
            if api_key.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rule.provider)
    return None if best is None else best[1]


def _shares_prefix(provider: str, other: str, api_key: str) -> bool:
    """True when the chosen provider matches the key with a prefix as long as ``other``'s."""
    mine = max((len(p) for p in PROVIDER_RULES[provider].prefixes if api_key.startswith(p)), default=0)
    theirs = max(len(p) for p in PROVIDER_RULES[other].prefixes if api_key.startswith(p))
    return mine >= theirs


def mask_key(rule: ProviderRule, api_key: str) -> str:
    """``sk-…abcd``: the provider's public prefix and the last four characters only."""
    prefix = next((p for p in sorted(rule.prefixes, key=len, reverse=True) if api_key.startswith(p)), "")
    return f"{prefix}…{api_key[-4:]}"


def _validate_models(models_allowed: list[str] | None) -> list[str] | None:
    if models_allowed is None:
        return None
    if len(models_allowed) > MAX_MODELS_ALLOWED:
        raise InvalidRequest(
            f"models_allowed may list at most {MAX_MODELS_ALLOWED} models.", details={"field": "models_allowed"}
        )
    for model in models_allowed:
        if not isinstance(model, str) or not _MODEL_NAME.fullmatch(model):
            raise InvalidRequest(
                "models_allowed entries must be model names of 1 to 128 characters.",
                details={"field": "models_allowed"},
            )
    return list(dict.fromkeys(models_allowed))


def _aad(key_id: str) -> str:
    return f"provider_key:{key_id}"


def summary(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "owner_scope": row.owner_scope,
        "owner_id": row.owner_id,
        "provider": row.provider,
        "masked_key": row.masked,
        "base_url": row.base_url,
        "models_allowed": row.models_allowed,
        "active": bool(row.active),
        "created_at": iso(row.created_at),
    }


def add_provider_key(
    ctx: ServiceContext,
    *,
    owner: KeyOwner,
    provider: str,
    api_key: str,
    base_url: str | None,
    models_allowed: list[str] | None,
    actor: Actor,
    egress_policy: EgressPolicy | None = None,
) -> dict[str, Any]:
    if owner.scope not in OWNER_SCOPES:
        raise InvalidRequest("owner_scope is not valid.", details={"field": "owner_scope"})
    if owner.scope == "platform" and owner.owner_id != PLATFORM_OWNER_ID:
        raise InvalidRequest("platform keys have owner_id 'platform'.", details={"field": "owner_id"})
    rule = validate_api_key(provider, api_key)
    if base_url is not None:
        validate_base_url(base_url, policy=egress_policy, field_name="base_url")
    models = _validate_models(models_allowed)
    box = SecretBox.from_settings(ctx.settings)
    key_row_id = new_id()
    now = ctx.clock()
    with ctx.db.transaction() as conn:
        if owner.scope == "developer":
            found = conn.execute(select(developers.c.id).where(developers.c.id == owner.owner_id)).first()
            if found is None:
                raise NotFound("Developer was not found.", details={"field": "owner_id"})
        conn.execute(
            provider_keys.insert().values(
                id=key_row_id,
                owner_scope=owner.scope,
                owner_id=owner.owner_id,
                provider=provider,
                key_id=box.key_id,
                ciphertext=box.encrypt(api_key, aad=_aad(key_row_id)),
                masked=mask_key(rule, api_key),
                base_url=base_url,
                models_allowed=models,
                active=True,
                created_at=now,
                updated_at=now,
            )
        )
        audit.record(
            conn,
            now=now,
            actor=actor.name,
            action="provider_key.create",
            resource_type="provider_key",
            resource_id=key_row_id,
            after_status="active",
            request_id=actor.request_id,
            details={"owner_scope": owner.scope, "owner_id": owner.owner_id, "provider": provider},
        )
        row = conn.execute(select(provider_keys).where(provider_keys.c.id == key_row_id)).one()
    return summary(row)


def list_provider_keys(
    ctx: ServiceContext, *, owner_scope: str | None = None, owner_id: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    stmt = (
        select(provider_keys)
        .order_by(provider_keys.c.owner_scope, provider_keys.c.owner_id, provider_keys.c.created_at)
        .limit(limit)
    )
    if owner_scope is not None:
        stmt = stmt.where(provider_keys.c.owner_scope == owner_scope)
    if owner_id is not None:
        stmt = stmt.where(provider_keys.c.owner_id == owner_id)
    with ctx.db.read() as conn:
        return [summary(row) for row in conn.execute(stmt)]


def delete_provider_key(ctx: ServiceContext, *, key_row_id: str, owner: KeyOwner | None, actor: Actor) -> None:
    """Hard delete: the row and its ciphertext are gone. ``owner`` None means an operator."""
    now = ctx.clock()
    with ctx.db.transaction() as conn:
        row = conn.execute(
            select(provider_keys.c.owner_scope, provider_keys.c.owner_id, provider_keys.c.provider).where(
                provider_keys.c.id == key_row_id
            )
        ).first()
        if row is None:
            raise NotFound("Provider key was not found.", details={"field": "id"})
        if owner is not None and (row.owner_scope, row.owner_id) != (owner.scope, owner.owner_id):
            raise Forbidden("This provider key belongs to someone else.")
        conn.execute(delete(provider_keys).where(provider_keys.c.id == key_row_id))
        audit.record(
            conn,
            now=now,
            actor=actor.name,
            action="provider_key.delete",
            resource_type="provider_key",
            resource_id=key_row_id,
            before_status="active",
            after_status="deleted",
            request_id=actor.request_id,
            details={"owner_scope": row.owner_scope, "owner_id": row.owner_id, "provider": row.provider},
        )


def open_provider_key(ctx: ServiceContext, key_row_id: str) -> str:
    """The plaintext key, for a server-side upstream call only. Never put it in a response."""
    with ctx.db.read() as conn:
        row = conn.execute(select(provider_keys.c.ciphertext).where(provider_keys.c.id == key_row_id)).first()
    if row is None:
        raise NotFound("Provider key was not found.", details={"field": "id"})
    return SecretBox.from_settings(ctx.settings).decrypt(str(row.ciphertext), aad=_aad(key_row_id))
