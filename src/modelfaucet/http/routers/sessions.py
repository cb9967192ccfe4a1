"""End-user sessions (SPEC §4): ``POST /v1/sessions``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ...services import sessions
from ...services.formatting import iso
from ..deps import Context
from ..schemas import StrictModel, error_responses

router = APIRouter(tags=["sessions"])


class CreateSessionRequest(StrictModel):
    public_app_id: Annotated[str, Field(min_length=1, max_length=64)]
    external_user_id: Annotated[str, Field(min_length=1, max_length=256)]
    feature_key: Annotated[str | None, Field(min_length=1, max_length=64)] = None


class SessionCreated(BaseModel):
    session_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_at: str
    end_user_id: str
    wallet_id: str
    public_app_id: str
    feature_key: str | None


@router.post(
    "/v1/sessions",
    status_code=201,
    response_model=SessionCreated,
    responses=error_responses(400, 404),
)
def create_session(ctx: Context, body: CreateSessionRequest) -> dict[str, Any]:
    created = sessions.create_session(
        ctx,
        public_app_id=body.public_app_id,
        external_user_id=body.external_user_id,
        feature_key=body.feature_key,
    )
    user = created.user
    return {
        "session_token": created.token,
        "expires_at": iso(user.expires_at),
        "end_user_id": user.end_user_id,
        "wallet_id": user.account_id,
        "public_app_id": user.public_app_id,
        "feature_key": user.feature_key,
    }
