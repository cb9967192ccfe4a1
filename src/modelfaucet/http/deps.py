"""Dependencies shared by the routers: the service context and who is calling."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from ..domain.outcomes import InvalidSession
from ..services.context import Actor, ServiceContext
from ..services.sessions import SessionUser as SessionUserModel
from ..services.sessions import authenticate_session


def get_context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


Context = Annotated[ServiceContext, Depends(get_context)]


# HTTP's optional whitespace around a header value: space and tab, nothing else. str.strip()
# would also drop U+00A0 or U+0085, and a token with one of those appended would match.
HEADER_BLANKS = " \t"


def bearer_token(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, exactly as sent (bar spaces and tabs)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip(HEADER_BLANKS)
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def require_admin(request: Request, ctx: Context) -> Actor:
    """Admin routes: a configured operator token, compared in constant time; closed if none."""
    presented = bearer_token(request)
    credentials = ctx.settings.operator_credentials()
    matched: str | None = None
    if presented is not None:
        given = presented.encode()
        # Compare against every configured token so timing does not reveal which matched.
        for name, token in credentials:
            if hmac.compare_digest(given, token.encode()) and matched is None:
                matched = name
    if matched is None:
        raise InvalidSession("A valid admin token is required.")
    return Actor(name=matched, request_id=str(getattr(request.state, "request_id", "")) or None)


AdminActor = Annotated[Actor, Depends(require_admin)]


def require_gateway(request: Request, ctx: Context) -> Actor:
    """Usage reporting: the gateway's service token, compared in constant time; closed if unset."""
    presented = bearer_token(request)
    expected = ctx.settings.gateway_service_token
    if presented is None or expected is None or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise InvalidSession("A valid gateway service token is required.")
    return Actor(name="gateway", request_id=str(getattr(request.state, "request_id", "")) or None)


GatewayActor = Annotated[Actor, Depends(require_gateway)]


def require_session(request: Request, ctx: Context) -> SessionUserModel:
    """End-user routes: a valid, unexpired ``mf_sess_…`` bearer token (401 otherwise)."""
    return authenticate_session(ctx, bearer_token(request))


# The authenticated end user: ``end_user_id``, ``app_id``, ``account_id`` (their wallet),
# ``feature_key`` (see :class:`modelfaucet.services.sessions.SessionUser`).
SessionUser = Annotated[SessionUserModel, Depends(require_session)]
