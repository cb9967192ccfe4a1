"""Who is looking at a page: session cookies, sign-in and sign-out, CSRF on every form.

A route asks for its session with a dependency and gets a
:class:`~modelfaucet.services.web_sessions.WebSession`:

- ``OperatorPage`` / ``DeveloperPage`` for a GET: no live session of the area's principal
  → a 303 to the area's sign-in page (the cookie is dropped);
- ``OperatorForm`` / ``DeveloperForm`` for a POST: the same, and the urlencoded body parsed
  and its ``csrf_token`` field checked against the session's secret (constant time). A
  missing or wrong token is a 403 page in words; nothing runs.

The sign-in form itself carries a CSRF token too (double submit: the same random value in a
short-lived ``SameSite=Strict`` cookie and in the form). The token presented is never put
in a page, a URL, a log or the session row.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...domain.outcomes import InvalidSession
from ...services.web_sessions import WebSession, open_session, sign_in, sign_out
from ..deps import Context
from .areas import AREAS, CONSOLE, PORTAL, Area
from .render import render

SIGN_IN_CSRF_COOKIE = "mf_sign_in"
CSRF_FIELD = "csrf_token"
MAX_FORM_FIELDS = 200


class SignInRequired(Exception):
    """No live session for this area: the handler answers a 303 to the sign-in page."""

    def __init__(self, area: Area, *, ended: bool) -> None:
        super().__init__(area.name)
        self.area = area
        self.ended = ended


class CsrfRefused(Exception):
    """A form without the session's CSRF token: the handler answers a 403 page."""

    def __init__(self, area: Area, session: WebSession | None) -> None:
        super().__init__(area.name)
        self.area = area
        self.session = session


@dataclass(frozen=True, slots=True)
class SignedForm:
    """A POSTed form whose CSRF token matched: the session and the other fields."""

    session: WebSession
    fields: dict[str, str]

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)


def _session_for(request: Request, ctx: Context, area: Area) -> WebSession:
    cookie = request.cookies.get(area.cookie)
    try:
        return open_session(ctx, area.principal, cookie)
    except InvalidSession as exc:
        raise SignInRequired(area, ended=cookie is not None) from exc


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (the last value of a repeated
    field wins); anything else is an empty form (and so fails the CSRF check)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return {}
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return {}
    return dict(pairs)


def csrf_matches(expected: str, presented: str) -> bool:
    return bool(expected) and hmac.compare_digest(expected.encode(), presented.encode())


async def _signed_form(request: Request, ctx: Context, area: Area) -> SignedForm:
    session = _session_for(request, ctx, area)
    fields = await read_form(request)
    if not csrf_matches(session.csrf_token, fields.pop(CSRF_FIELD, "")):
        raise CsrfRefused(area, session)
    return SignedForm(session, fields)


def operator_page(request: Request, ctx: Context) -> WebSession:
    return _session_for(request, ctx, CONSOLE)


def developer_page(request: Request, ctx: Context) -> WebSession:
    return _session_for(request, ctx, PORTAL)


async def operator_form(request: Request, ctx: Context) -> SignedForm:
    return await _signed_form(request, ctx, CONSOLE)


async def developer_form(request: Request, ctx: Context) -> SignedForm:
    return await _signed_form(request, ctx, PORTAL)


OperatorPage = Annotated[WebSession, Depends(operator_page)]
DeveloperPage = Annotated[WebSession, Depends(developer_page)]
OperatorForm = Annotated[SignedForm, Depends(operator_form)]
DeveloperForm = Annotated[SignedForm, Depends(developer_form)]


def request_id(request: Request) -> str | None:
    return str(getattr(request.state, "request_id", "")) or None


def session_cookie(response: Response, request: Request, area: Area, value: str) -> None:
    ctx = request.app.state.ctx
    response.set_cookie(
        area.cookie,
        value,
        path=area.base,
        httponly=True,
        samesite="strict",
        secure=bool(ctx.settings.production),
    )


def _safe_next(area: Area, target: str) -> str:
    """Only a path inside the area (never another host, never a scheme)."""
    if (target == area.base or target.startswith(area.base + "/")) and "//" not in target and "\\" not in target:
        return target
    return area.base


# --- sign-in and sign-out ---------------------------------------------------------------------

router = APIRouter(include_in_schema=False)


def _sign_in_page(request: Request, area: Area, *, status: int = 200, error: str | None = None) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "sign_in.html",
        area=area,
        session=None,
        title=f"Sign in — {area.title}",
        status=status,
        error=error,
        sign_in_csrf=token,
        next_path=_safe_next(area, request.query_params.get("next", area.base)),
    )
    response.set_cookie(
        SIGN_IN_CSRF_COOKIE,
        token,
        path=area.sign_in_path,
        httponly=True,
        samesite="strict",
        secure=bool(request.app.state.ctx.settings.production),
        max_age=3600,
    )
    return response


def _area_of(request: Request) -> Area:
    return AREAS[request.url.path.split("/")[1]]


@router.get("/console/sign-in", response_class=HTMLResponse)
@router.get("/portal/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request) -> HTMLResponse:
    return _sign_in_page(request, _area_of(request))


@router.post("/console/sign-in", response_model=None)
@router.post("/portal/sign-in", response_model=None)
async def sign_in_submit(request: Request, ctx: Context) -> Response:
    area = _area_of(request)
    fields = await read_form(request)
    if not csrf_matches(request.cookies.get(SIGN_IN_CSRF_COOKIE, ""), fields.get(CSRF_FIELD, "")):
        return _sign_in_page(
            request, area, status=403, error="The sign-in form had expired. Please enter your token again."
        )
    try:
        issued = sign_in(ctx, area.principal, fields.get("token", ""), request_id=request_id(request))
    except InvalidSession as refusal:
        return _sign_in_page(request, area, status=401, error=refusal.message)
    response = RedirectResponse(_safe_next(area, fields.get("next", area.base)), status_code=303)
    session_cookie(response, request, area, issued.session_id)
    response.delete_cookie(SIGN_IN_CSRF_COOKIE, path=area.sign_in_path)
    return response


@router.post("/console/sign-out", response_model=None)
@router.post("/portal/sign-out", response_model=None)
async def sign_out_submit(request: Request, ctx: Context) -> Response:
    area = _area_of(request)
    signed = await _signed_form(request, ctx, area)
    del signed
    sign_out(ctx, request.cookies.get(area.cookie), request_id=request_id(request))
    response = RedirectResponse(f"{area.sign_in_path}?done=signed_out", status_code=303)
    response.delete_cookie(area.cookie, path=area.base)
    return response
