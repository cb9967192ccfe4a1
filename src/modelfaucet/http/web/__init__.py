"""The web interface (SPEC §21): ``/console`` for operators, ``/portal`` for developers.

Server-rendered pages (Jinja2 templates in ``templates/``), a stylesheet and one small
progressive-enhancement script in ``static/`` (served from ``/web/static/``), all inside
the package. :func:`install_web` adds the routes and the two exception handlers (sign-in
required → 303, CSRF refused → 403 page). See docs/web.md.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .auth import CsrfRefused, SignInRequired
from .auth import router as auth_router
from .render import render
from .static import router as static_router


def _routers() -> list[APIRouter]:
    """Every web router. The developer portal adds its router here."""
    from . import console, portal

    return [static_router, auth_router, console.router, portal.router]


def install_web(app: FastAPI) -> None:
    async def on_sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        area = exc.area
        target = f"{area.sign_in_path}?next={quote(request.url.path, safe='/')}"
        if exc.ended:
            target += "&done=session_ended"
        response = RedirectResponse(target, status_code=303)
        response.delete_cookie(area.cookie, path=area.base)
        return response

    async def on_csrf_refused(request: Request, exc: Exception) -> HTMLResponse:
        assert isinstance(exc, CsrfRefused)
        return render(
            request,
            "refusal.html",
            area=exc.area,
            session=exc.session,
            title="Form refused",
            status=403,
            error=(
                "This form could not be accepted: its security token is missing or out of date. "
                "Nothing was changed. Reload the page and try again."
            ),
            back=exc.area.base,
        )

    app.add_exception_handler(SignInRequired, on_sign_in_required)
    app.add_exception_handler(CsrfRefused, on_csrf_refused)
    for router in _routers():
        app.include_router(router)
