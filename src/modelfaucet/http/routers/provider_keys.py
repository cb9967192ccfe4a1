"""Provider keys: operators manage platform and developer keys; end users their BYOK keys.

Responses carry the masked key only (``sk-…abcd``); the plaintext never leaves the server.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ...domain.ledger import PLATFORM_OWNER_ID, OwnerScope
from ...domain.timestamps import iso
from ...services import provider_keys
from ...services.context import Actor
from ...services.provider_keys import KeyOwner
from ...services.repositories import ProviderKeyRecord
from ...services.sessions import SessionUser as SessionUserModel
from ..deps import AdminActor, Context, SessionUser
from ..schemas import StrictModel, error_responses, parse_uuid

router = APIRouter(tags=["provider keys"])

ApiKey = Annotated[str, Field(min_length=1, max_length=512, json_schema_extra={"writeOnly": True})]
BaseUrl = Annotated[str, Field(min_length=1, max_length=2048)]
ModelName = Annotated[str, Field(min_length=1, max_length=128)]


class ProviderKeyOut(BaseModel):
    id: str
    owner_scope: str
    owner_id: str
    provider: str
    masked_key: str = Field(examples=["sk-…abcd"])
    base_url: str | None
    models_allowed: list[str] | None
    active: bool
    created_at: str

    @classmethod
    def of(cls, key: ProviderKeyRecord) -> ProviderKeyOut:
        return cls(
            id=key.id,
            owner_scope=str(key.owner_scope),
            owner_id=key.owner_id,
            provider=key.provider,
            masked_key=key.masked,
            base_url=key.base_url,
            models_allowed=None if key.models_allowed is None else list(key.models_allowed),
            active=key.active,
            created_at=iso(key.created_at),
        )


class ProviderKeyList(BaseModel):
    items: list[ProviderKeyOut]

    @classmethod
    def of(cls, keys: list[ProviderKeyRecord]) -> ProviderKeyList:
        return cls(items=[ProviderKeyOut.of(key) for key in keys])


class ProviderKeyDeleted(BaseModel):
    id: str
    deleted: bool


class AdminProviderKeyIn(StrictModel):
    owner_scope: Literal["platform", "developer"]
    owner_id: Annotated[str | None, Field(max_length=64)] = None
    provider: Annotated[str, Field(min_length=1, max_length=64)]
    api_key: ApiKey
    base_url: BaseUrl | None = None
    models_allowed: Annotated[list[ModelName] | None, Field(max_length=100)] = None


class UserProviderKeyIn(StrictModel):
    provider: Annotated[str, Field(min_length=1, max_length=64)]
    api_key: ApiKey
    base_url: BaseUrl | None = None
    models_allowed: Annotated[list[ModelName] | None, Field(max_length=100)] = None


@router.post(
    "/v1/admin/provider-keys",
    status_code=201,
    response_model=ProviderKeyOut,
    responses=error_responses(400, 401, 404),
)
def admin_add_provider_key(ctx: Context, actor: AdminActor, body: AdminProviderKeyIn) -> ProviderKeyOut:
    if body.owner_scope == "platform":
        owner = KeyOwner(OwnerScope.PLATFORM, body.owner_id or PLATFORM_OWNER_ID)
    else:
        owner = KeyOwner(OwnerScope.DEVELOPER, parse_uuid(body.owner_id or "", field="owner_id"))
    created = provider_keys.add_provider_key(
        ctx,
        owner=owner,
        provider=body.provider,
        api_key=body.api_key,
        base_url=body.base_url,
        models_allowed=body.models_allowed,
        actor=actor,
    )
    return ProviderKeyOut.of(created)


@router.get("/v1/admin/provider-keys", response_model=ProviderKeyList, responses=error_responses(400, 401))
def admin_list_provider_keys(
    ctx: Context,
    _actor: AdminActor,
    owner_scope: Annotated[Literal["platform", "developer", "end_user"] | None, Query()] = None,
    owner_id: Annotated[str | None, Query(max_length=64)] = None,
) -> ProviderKeyList:
    scope = None if owner_scope is None else OwnerScope(owner_scope)
    return ProviderKeyList.of(provider_keys.list_provider_keys(ctx, owner_scope=scope, owner_id=owner_id))


@router.delete(
    "/v1/admin/provider-keys/{key_id}",
    response_model=ProviderKeyDeleted,
    responses=error_responses(400, 401, 404),
)
def admin_delete_provider_key(ctx: Context, actor: AdminActor, key_id: str) -> ProviderKeyDeleted:
    key_row_id = parse_uuid(key_id, field="key_id")
    provider_keys.delete_provider_key(ctx, key_row_id=key_row_id, owner=None, actor=actor)
    return ProviderKeyDeleted(id=key_row_id, deleted=True)


def _end_user(user: SessionUserModel) -> tuple[KeyOwner, Actor]:
    return KeyOwner(OwnerScope.END_USER, user.end_user_id), Actor(name=f"end_user:{user.end_user_id}")


@router.post(
    "/v1/user/provider-keys",
    status_code=201,
    response_model=ProviderKeyOut,
    responses=error_responses(400, 401),
)
def user_add_provider_key(ctx: Context, user: SessionUser, body: UserProviderKeyIn) -> ProviderKeyOut:
    owner, actor = _end_user(user)
    created = provider_keys.add_provider_key(
        ctx,
        owner=owner,
        provider=body.provider,
        api_key=body.api_key,
        base_url=body.base_url,
        models_allowed=body.models_allowed,
        actor=actor,
    )
    return ProviderKeyOut.of(created)


@router.get("/v1/user/provider-keys", response_model=ProviderKeyList, responses=error_responses(401))
def user_list_provider_keys(ctx: Context, user: SessionUser) -> ProviderKeyList:
    keys = provider_keys.list_provider_keys(ctx, owner_scope=OwnerScope.END_USER, owner_id=user.end_user_id)
    return ProviderKeyList.of(keys)


@router.delete(
    "/v1/user/provider-keys/{key_id}",
    response_model=ProviderKeyDeleted,
    responses=error_responses(400, 401, 403, 404),
)
def user_delete_provider_key(ctx: Context, user: SessionUser, key_id: str) -> ProviderKeyDeleted:
    owner, actor = _end_user(user)
    key_row_id = parse_uuid(key_id, field="key_id")
    provider_keys.delete_provider_key(ctx, key_row_id=key_row_id, owner=owner, actor=actor)
    return ProviderKeyDeleted(id=key_row_id, deleted=True)
