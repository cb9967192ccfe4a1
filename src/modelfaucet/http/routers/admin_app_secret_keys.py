"""Admin: an app's secret keys (SPEC §4), the credential its backend opens sessions with.

``POST`` answers the key once (201); ``GET`` lists names and dates, never a key; ``DELETE``
revokes (204, also when the key was already revoked).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from ...domain.timestamps import iso
from ...services import app_secret_keys
from ...services.repositories import AppSecretKeyRecord
from ..deps import AdminActor, Context
from ..schemas import StrictModel, error_responses, parse_uuid

router = APIRouter(tags=["app secret keys"])

PublicAppId = Annotated[str, Path(max_length=64)]


class SecretKeyIn(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=200, examples=["production backend"])]


class SecretKeyIssuedOut(BaseModel):
    id: str
    name: str
    secret_key: str = Field(description="Shown only in this response: store it in the app's backend.")
    created_at: str


class SecretKeyOut(BaseModel):
    id: str
    name: str
    created_at: str
    last_used_at: str | None = Field(description="When it last opened a session (to the minute).")
    revoked_at: str | None


class SecretKeyList(BaseModel):
    items: list[SecretKeyOut]


def _moment(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def _key_out(key: AppSecretKeyRecord) -> SecretKeyOut:
    return SecretKeyOut(
        id=key.id,
        name=key.name,
        created_at=iso(key.created_at),
        last_used_at=_moment(key.last_used_at),
        revoked_at=_moment(key.revoked_at),
    )


@router.post(
    "/v1/admin/apps/{public_app_id}/secret-keys",
    status_code=201,
    response_model=SecretKeyIssuedOut,
    responses=error_responses(400, 401, 404),
)
def issue_secret_key(
    ctx: Context, actor: AdminActor, public_app_id: PublicAppId, body: SecretKeyIn
) -> SecretKeyIssuedOut:
    """Issue a secret key for the app's backend (``mf_app_sk_…``): shown once, stored as a hash."""
    issued = app_secret_keys.issue_secret_key(ctx, actor, public_app_id=public_app_id, name=body.name)
    return SecretKeyIssuedOut(
        id=issued.key.id, name=issued.key.name, secret_key=issued.secret_key, created_at=iso(issued.key.created_at)
    )


@router.get(
    "/v1/admin/apps/{public_app_id}/secret-keys",
    response_model=SecretKeyList,
    responses=error_responses(400, 401, 404),
)
def list_secret_keys(ctx: Context, _actor: AdminActor, public_app_id: PublicAppId) -> SecretKeyList:
    """The app's keys, revoked ones included, oldest first; never a key itself."""
    keys = app_secret_keys.list_secret_keys(ctx, public_app_id=public_app_id)
    return SecretKeyList(items=[_key_out(key) for key in keys])


@router.delete(
    "/v1/admin/apps/{public_app_id}/secret-keys/{key_id}",
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "Revoked (or already revoked): the key opens no new session."},
        **error_responses(400, 401, 404),
    },
)
def revoke_secret_key(ctx: Context, actor: AdminActor, public_app_id: PublicAppId, key_id: str) -> Response:
    """Revoke a key: sessions it opened stay valid until they expire; it opens no new one."""
    app_secret_keys.revoke_secret_key(
        ctx, actor, public_app_id=public_app_id, key_id=parse_uuid(key_id, field="key_id")
    )
    return Response(status_code=204)
