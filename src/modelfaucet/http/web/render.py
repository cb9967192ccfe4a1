"""Rendering web pages: one Jinja2 environment, templates and assets inside the package.

``render(request, "console/overview.html", area=CONSOLE, session=session, title=..., **values)``
returns an HTML response through ``templates/base.html`` (``lang``, skip link, navigation,
the flash message, the sign-out form with its CSRF token). Autoescaping is on: a value is
never trusted as HTML unless it is :class:`markupsafe.Markup` (the charts' SVG).

Flash messages travel as a short code in the query string (``?done=approved``) and are
looked up in :data:`FLASH_MESSAGES`: a page never reflects text a link carries.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from ...domain.money import UNITS_PER_USD
from ...domain.outcomes import Refusal
from ...services.web_sessions import WebSession
from ..errors import status_for
from .areas import Area

# Success notes shown after an action (POST → 303 → GET ?done=<code>). Add yours here.
FLASH_MESSAGES: dict[str, str] = {
    "signed_out": "You are signed out.",
    "key_added": "The provider key is added. It is stored encrypted and shown only masked from now on.",
    "key_deleted": "The provider key is deleted.",
    "session_ended": "Your session has ended. Please sign in again.",
    "approved": "The payout is approved.",
    "paid": "The payout is marked paid.",
    "cancelled": "The payout is cancelled; its amount is available to the developer again.",
    "failed": "The payout is marked failed; its amount is available to the developer again.",
    "adjusted": "The adjustment is applied.",
    "synced": "Stripe sync finished.",
}


def usd(units: int | None) -> str:
    """Money for people: ``$1,234.50000000`` → ``$1,234.50`` (more digits only when they matter)."""
    if units is None:
        return "—"
    value = Decimal(units) / UNITS_PER_USD
    sign = "−" if value < 0 else ""
    value = abs(value)
    text = f"{value:,.2f}" if value == value.quantize(Decimal("0.01")) else f"{value:,.8f}".rstrip("0")
    return f"{sign}${text}"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("modelfaucet.http.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["usd"] = usd
    env.filters["when"] = lambda value: "—" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")
    env.globals["query"] = lambda **kw: "?" + urlencode({k: v for k, v in kw.items() if v not in (None, "")})
    return env


def render(
    request: Request,
    template: str,
    *,
    area: Area,
    session: WebSession | None,
    title: str,
    status: int = 200,
    error: str | None = None,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    """The page ``template`` inside the area's layout. ``error`` is a refusal in words."""
    flash = FLASH_MESSAGES.get(request.query_params.get("done", ""))
    html = (
        environment()
        .get_template(template)
        .render(
            area=area,
            session=session,
            csrf_token=session.csrf_token if session is not None else "",
            title=title,
            flash=flash,
            error=error,
            current_path=request.url.path,
            **values,
        )
    )
    return HTMLResponse(html, status_code=status, headers=headers)


def refusal_page(
    request: Request, refusal: Refusal, *, area: Area, session: WebSession | None, back: str, title: str = "Not done"
) -> HTMLResponse:
    """A refusal of a service (maker-checker, a transition not allowed, not found, …) in words,
    with the status the API would answer and a link back."""
    return render(
        request,
        "refusal.html",
        area=area,
        session=session,
        title=title,
        status=status_for(refusal),
        error=refusal.message,
        back=back,
    )
