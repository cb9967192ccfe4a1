"""Admin: a developer's tokens (SPEC §17), the credential of their ``/v1/developer/*`` routes.

``POST`` answers the token once (201); ``GET`` lists names and dates, never a token;
``DELETE`` revokes (204, also when the token was already revoked): the next request with
it is 401.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ...domain.timestamps import iso
from ...services import developer_tokens
from ...services.repositories import DeveloperTokenRecord
from ..deps import AdminActor, Context
from ..schemas import StrictModel, error_responses, parse_uuid

router = APIRouter(tags=["developer tokens"])


class DeveloperTokenIn(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=200, examples=["ci-export"])]


class DeveloperTokenIssuedOut(BaseModel):
    id: str
    name: str
    token: str = Field(description="Shown only in this response: hand it to the developer.")
    created_at: str


class DeveloperTokenOut(BaseModel):
    id: str
    name: str
    created_at: str
    last_used_at: str | None = Field(description="When it last opened a developer route (to the minute).")
    revoked_at: str | None


class DeveloperTokenList(BaseModel):
    items: list[DeveloperTokenOut]


def _moment(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def _token_out(record: DeveloperTokenRecord) -> DeveloperTokenOut:
    return DeveloperTokenOut(
        id=record.id,
        name=record.name,
        created_at=iso(record.created_at),
        last_used_at=_moment(record.last_used_at),
        revoked_at=_moment(record.revoked_at),
    )


@router.post(
    "/v1/admin/developers/{developer_id}/tokens",
    status_code=201,
    response_model=DeveloperTokenIssuedOut,
    responses=error_responses(400, 401, 404),
)
def issue_developer_token(
    ctx: Context, actor: AdminActor, developer_id: str, body: DeveloperTokenIn
) -> DeveloperTokenIssuedOut:
    """Issue a developer token (``mf_dev_…``): shown once, stored as a hash."""
    issued = developer_tokens.issue_developer_token(
        ctx, actor, developer_id=parse_uuid(developer_id, field="developer_id"), name=body.name
    )
    return DeveloperTokenIssuedOut(
        id=issued.record.id, name=issued.record.name, token=issued.token, created_at=iso(issued.record.created_at)
    )


@router.get(
    "/v1/admin/developers/{developer_id}/tokens",
    response_model=DeveloperTokenList,
    responses=error_responses(400, 401, 404),
)
def list_developer_tokens(ctx: Context, _actor: AdminActor, developer_id: str) -> DeveloperTokenList:
    """The developer's tokens, revoked ones included, oldest first; never a token itself."""
    records = developer_tokens.list_developer_tokens(ctx, developer_id=parse_uuid(developer_id, field="developer_id"))
    return DeveloperTokenList(items=[_token_out(record) for record in records])


@router.delete(
    "/v1/admin/developers/{developer_id}/tokens/{token_id}",
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "Revoked (or already revoked): the next request with it is 401."},
        **error_responses(400, 401, 404),
    },
)
def revoke_developer_token(ctx: Context, actor: AdminActor, developer_id: str, token_id: str) -> Response:
    developer_tokens.revoke_developer_token(
        ctx,
        actor,
        developer_id=parse_uuid(developer_id, field="developer_id"),
        token_id=parse_uuid(token_id, field="token_id"),
    )
    return Response(status_code=204)
