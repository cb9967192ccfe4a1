"""The developer door (SPEC §17): ``Authorization: Bearer mf_dev_…`` on ``/v1/developer/*``.

The token is looked up by its SHA-256 (see :func:`~modelfaucet.services.developer_tokens.authenticate_developer`);
a missing, malformed, unknown or revoked token is the same 401. The other doors (admin,
gateway, session, app key) never accept a developer token: each checks its own credential
only, and none of them has the ``mf_dev_`` form.

``DeveloperBearer`` also names the scheme in the OpenAPI document, so every developer
route lists it as its security requirement.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..services.developer_tokens import DeveloperPrincipal, authenticate_developer
from .deps import Context, bearer_token

DEVELOPER_BEARER = HTTPBearer(
    scheme_name="DeveloperToken",
    bearerFormat="mf_dev_…",
    description=(
        "A developer token (`mf_dev_…`), issued by an operator with "
        "`POST /v1/admin/developers/{developer_id}/tokens` and shown once. "
        "It opens the developer's own `/v1/developer/*` routes and nothing else."
    ),
    auto_error=False,
)


def require_developer(
    request: Request,
    ctx: Context,
    _documented: Annotated[HTTPAuthorizationCredentials | None, Security(DEVELOPER_BEARER)],
) -> DeveloperPrincipal:
    """The developer of a valid ``mf_dev_…`` bearer token (401 otherwise)."""
    # The token is read the same way as every other bearer credential of the API.
    request_id = str(getattr(request.state, "request_id", "")) or None
    return authenticate_developer(ctx, bearer_token(request), request_id=request_id)


# The authenticated developer: ``developer_id``, ``token_id``; ``.actor`` names them in the audit trail.
Developer = Annotated[DeveloperPrincipal, Depends(require_developer)]
