"""End-user sessions (SPEC §4): ``POST /v1/sessions``, called by the app's backend with its secret key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ...domain.timestamps import iso
from ...services import sessions
from ..deps import Context, bearer_token
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
    responses=error_responses(400, 401, 404),
)
def create_session(ctx: Context, request: Request, body: CreateSessionRequest) -> SessionCreated:
    """Open a session for one of the app's users. The app's backend calls this with
    ``Authorization: Bearer mf_app_sk_…`` (a secret key of that app, issued by an operator)
    and hands the session token to its client; without a valid key of that app: 401."""
    created = sessions.create_session(
        ctx,
        secret_key=bearer_token(request),
        public_app_id=body.public_app_id,
        external_user_id=body.external_user_id,
        feature_key=body.feature_key,
    )
    user = created.user
    return SessionCreated(
        session_token=created.token,
        expires_at=iso(user.expires_at),
        end_user_id=user.end_user_id,
        wallet_id=user.account_id,
        public_app_id=user.public_app_id,
        feature_key=user.feature_key,
    )
