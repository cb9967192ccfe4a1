"""Provider key vault: add, list, delete and (server-side only) open provider API keys.

Three kinds of owner: the platform's own keys and developer keys (managed by operators),
and end users' BYOK keys (managed by the end user through their session). Keys are sealed
with :class:`~modelfaucet.adapters.secretbox.SecretBox` (AES-256-GCM, associated data
:func:`associated_data`, ``provider_key:<id>``) and only a masked form (``sk-…abcd``) ever leaves this module,
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

from ..adapters.egress import EgressPolicy, validate_base_url
from ..adapters.secretbox import SecretBox
from ..domain.audit import AuditEntry
from ..domain.identity import new_id
from ..domain.ledger import PLATFORM_OWNER_ID, OwnerScope
from ..domain.outcomes import Forbidden, InvalidRequest, NotFound
from .catalog import require_developer
from .context import Actor, ServiceContext
from .repositories import ProviderKeyRecord, SealedSecret

OWNER_SCOPES = frozenset({OwnerScope.PLATFORM, OwnerScope.DEVELOPER, OwnerScope.END_USER})
PROVIDER_KEY_NOT_FOUND = "Provider key was not found."
RESOURCE_TYPE = "provider_key"
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
    scope: OwnerScope
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


def associated_data(key_row_id: str) -> str:
    """What a key's ciphertext is bound to: its own row, so a ciphertext copied onto another
    row does not open."""
    return f"provider_key:{key_row_id}"


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
) -> ProviderKeyRecord:
    if owner.scope not in OWNER_SCOPES:
        raise InvalidRequest("owner_scope is not valid.", details={"field": "owner_scope"})
    scope = OwnerScope(owner.scope)
    if scope is OwnerScope.PLATFORM and owner.owner_id != PLATFORM_OWNER_ID:
        raise InvalidRequest(f"platform keys have owner_id '{PLATFORM_OWNER_ID}'.", details={"field": "owner_id"})
    rule = validate_api_key(provider, api_key)
    if base_url is not None:
        validate_base_url(base_url, policy=egress_policy, field_name="base_url")
    models = _validate_models(models_allowed)
    box = SecretBox.from_settings(ctx.settings)
    key_row_id = new_id()
    sealed = SealedSecret(box.key_id, box.encrypt(api_key, aad=associated_data(key_row_id)))
    with ctx.unit_of_work() as uow:
        if scope is OwnerScope.DEVELOPER:
            require_developer(uow, owner.owner_id, details={"field": "owner_id"})
        key = ProviderKeyRecord(
            id=key_row_id,
            owner_scope=scope,
            owner_id=owner.owner_id,
            provider=provider,
            masked=mask_key(rule, api_key),
            base_url=base_url,
            models_allowed=None if models is None else tuple(models),
            active=True,
            created_at=uow.now,
        )
        uow.provider_keys.add(key, sealed)
        uow.audit.add(
            AuditEntry(
                actor=actor.name,
                action="provider_key.create",
                resource_type=RESOURCE_TYPE,
                resource_id=key_row_id,
                after_status="active",
                request_id=actor.request_id,
                details={"owner_scope": str(scope), "owner_id": owner.owner_id, "provider": provider},
            )
        )
        uow.commit()
    return key


def list_provider_keys(
    ctx: ServiceContext, *, owner_scope: OwnerScope | None = None, owner_id: str | None = None, limit: int = 500
) -> list[ProviderKeyRecord]:
    with ctx.reader() as uow:
        return uow.provider_keys.find(owner_scope=owner_scope, owner_id=owner_id, limit=limit)


def delete_provider_key(ctx: ServiceContext, *, key_row_id: str, owner: KeyOwner | None, actor: Actor) -> None:
    """Hard delete: the row and its ciphertext are gone. ``owner`` None means an operator."""
    with ctx.unit_of_work() as uow:
        key = uow.provider_keys.get(key_row_id)
        if key is None:
            raise NotFound(PROVIDER_KEY_NOT_FOUND, details={"field": "id"})
        if owner is not None and (key.owner_scope, key.owner_id) != (owner.scope, owner.owner_id):
            raise Forbidden("This provider key belongs to someone else.")
        uow.provider_keys.delete(key_row_id)
        uow.audit.add(
            AuditEntry(
                actor=actor.name,
                action="provider_key.delete",
                resource_type=RESOURCE_TYPE,
                resource_id=key_row_id,
                before_status="active",
                after_status="deleted",
                request_id=actor.request_id,
                details={"owner_scope": str(key.owner_scope), "owner_id": key.owner_id, "provider": key.provider},
            )
        )
        uow.commit()


def open_provider_key(ctx: ServiceContext, key_row_id: str) -> str:
    """The plaintext key, for a server-side upstream call only. Never put it in a response."""
    with ctx.reader() as uow:
        sealed = uow.provider_keys.sealed(key_row_id)
    if sealed is None:
        raise NotFound(PROVIDER_KEY_NOT_FOUND, details={"field": "id"})
    return SecretBox.from_settings(ctx.settings).decrypt(sealed.ciphertext, aad=associated_data(key_row_id))
