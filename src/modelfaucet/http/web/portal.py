"""The developer portal (SPEC §21): a developer's own money, read with a session.

Every page takes a ``DeveloperPage`` session and reads through the same services as the
developer API (:mod:`~modelfaucet.services.developer_access`,
:mod:`~modelfaucet.services.developer_portal`) with the session's developer id — never an
id from the request — so another developer's payout or key answers exactly like an unknown
one. Adding and deleting a provider key are plain forms (``DeveloperForm``: CSRF checked)
that go through the same vault as ``/v1/developer/provider-keys``, audited as
``developer:<id>``.

Dates in the portal's forms are whole UTC days and both ends are included: ``from`` is
midnight of its day, ``to`` is midnight after its day.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from ...domain.money import UNITS_PER_USD
from ...domain.outcomes import Refusal
from ...domain.windows import Window
from ...services import developer_access, statements
from ...services.developer_portal import developer_dashboard
from ...services.provider_keys import PROVIDER_RULES
from ...services.web_sessions import WebSession
from ..deps import Context
from ..errors import status_for
from ..routers.provider_keys import UserProviderKeyIn
from ..routers.statements import statement_response
from ..schemas import parse_uuid
from .areas import PORTAL
from .auth import DeveloperForm, DeveloperPage, request_id
from .charts import ChartKind, Series, day_chart
from .days import day_window
from .render import refusal_page, render, usd

router = APIRouter(include_in_schema=False)

# Statement entries shown on the page; the CSV has all of them.
STATEMENT_PREVIEW = 50


def shown_days(window: Window) -> tuple[str, str]:
    """The form's ``from``/``to`` values for a window: its first and its last day."""
    last = max(window.start, window.end - timedelta(microseconds=1))
    return window.start.date().isoformat(), last.date().isoformat()


def _dollars(units: int) -> Decimal:
    return Decimal(units) / UNITS_PER_USD


def _usd_cell(value: Decimal | int) -> str:
    return usd(int(Decimal(value) * UNITS_PER_USD))


def _page(request: Request, template: str, session: WebSession, title: str, **values: Any) -> HTMLResponse:
    # The header names the signed-in developer by name (the session knows the id only).
    who = developer_access.developer_name(request.app.state.ctx, session.subject)
    return render(request, template, area=PORTAL, session=session, title=title, who=who, **values)


# --- earnings -----------------------------------------------------------------------------------


@router.get("/portal", response_class=HTMLResponse)
def earnings(request: Request, ctx: Context, session: DeveloperPage) -> HTMLResponse:
    """Balance, earnings per day as a chart (and a table), and by app, feature and model."""
    query = request.query_params
    try:
        start, end = day_window(query.get("from"), query.get("to"))
        board = developer_dashboard(ctx, session.subject, start=start, end=end)
    except Refusal as refusal:
        return _page(
            request,
            "portal/earnings.html",
            session,
            "Earnings",
            status=status_for(refusal),
            error=refusal.message,
            board=None,
            chart=None,
            shown=(query.get("from", ""), query.get("to", "")),
        )
    chart = day_chart(
        "earnings-per-day",
        "Your earnings per day",
        board.days,
        [Series("Your earnings", [_dollars(day.channel_revenue_units) for day in board.per_day])],
        unit="USD",
        kind=ChartKind.BAR,
        format_value=_usd_cell,
    )
    return _page(
        request, "portal/earnings.html", session, "Earnings", board=board, chart=chart, shown=shown_days(board.window)
    )


# --- payouts ------------------------------------------------------------------------------------


@router.get("/portal/payouts", response_class=HTMLResponse)
def payouts(request: Request, ctx: Context, session: DeveloperPage) -> HTMLResponse:
    found = developer_access.developer_payouts(ctx, session.subject, limit=200)
    balance = developer_access.developer_balance(ctx, session.subject)
    return _page(request, "portal/payouts.html", session, "Payouts", payouts=found, balance=balance)


@router.get("/portal/payouts/{payout_id}", response_class=HTMLResponse)
def payout(request: Request, ctx: Context, session: DeveloperPage, payout_id: str) -> HTMLResponse:
    try:
        found = developer_access.developer_payout(ctx, session.subject, parse_uuid(payout_id, field="payout_id"))
    except Refusal as refusal:  # another developer's payout reads exactly like an unknown one
        return refusal_page(request, refusal, area=PORTAL, session=session, back="/portal/payouts")
    return _page(request, "portal/payout.html", session, "Payout", found=found)


# --- statement ----------------------------------------------------------------------------------


@router.get("/portal/statement", response_class=HTMLResponse)
def statement(request: Request, ctx: Context, session: DeveloperPage) -> HTMLResponse:
    """The statement of the chosen days: opening, totals by reason, closing, the first
    entries, and the CSV to download."""
    query = request.query_params
    try:
        start, end = day_window(query.get("from"), query.get("to"))
        of = developer_access.developer_statement(ctx, session.subject, start=start, end=end)
    except Refusal as refusal:
        return _page(
            request,
            "portal/statement.html",
            session,
            "Statement",
            status=status_for(refusal),
            error=refusal.message,
            summary=None,
            shown=(query.get("from", ""), query.get("to", "")),
        )
    with statements.open_statement(ctx, of) as read:
        summary = read.summary
        entries = list(islice(read.entries, STATEMENT_PREVIEW + 1))
    shown = shown_days(of.window)
    return _page(
        request,
        "portal/statement.html",
        session,
        "Statement",
        summary=summary,
        entries=entries[:STATEMENT_PREVIEW],
        more=len(entries) > STATEMENT_PREVIEW,
        shown=shown,
        download=f"/portal/statement.csv?from={shown[0]}&to={shown[1]}",
    )


@router.get("/portal/statement.csv", response_model=None)
def statement_csv(request: Request, ctx: Context, session: DeveloperPage) -> Response:
    query = request.query_params
    try:
        start, end = day_window(query.get("from"), query.get("to"))
        of = developer_access.developer_statement(ctx, session.subject, start=start, end=end)
    except Refusal as refusal:
        return refusal_page(request, refusal, area=PORTAL, session=session, back="/portal/statement")
    return statement_response(ctx, of, csv=True)


# --- provider keys ------------------------------------------------------------------------------


def _keys_page(
    request: Request,
    ctx: Context,
    session: WebSession,
    *,
    status: int = 200,
    error: str | None = None,
    entered: dict[str, str] | None = None,
) -> HTMLResponse:
    keys = developer_access.provider_keys_of(ctx, session.subject)
    return _page(
        request,
        "portal/keys.html",
        session,
        "Provider keys",
        status=status,
        error=error,
        keys=keys,
        entered=entered or {},
        providers=sorted(PROVIDER_RULES),
    )


@router.get("/portal/keys", response_class=HTMLResponse)
def keys(request: Request, ctx: Context, session: DeveloperPage) -> HTMLResponse:
    return _keys_page(request, ctx, session)


def _key_input(fields: dict[str, str]) -> UserProviderKeyIn:
    """The form as the API's body, checked by the same model (lengths, characters)."""
    models = [m.strip() for m in fields.get("models_allowed", "").split(",") if m.strip()]
    body: dict[str, Any] = {"provider": fields.get("provider", "").strip(), "api_key": fields.get("api_key", "")}
    if fields.get("base_url", "").strip():
        body["base_url"] = fields["base_url"].strip()
    if models:
        body["models_allowed"] = models
    return UserProviderKeyIn.model_validate(body)


def _in_words(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "the form"
    return f"{where}: {first.get('msg', 'is not valid')}."


@router.post("/portal/keys", response_model=None)
def add_key(request: Request, ctx: Context, form: DeveloperForm) -> Response:
    session = form.session
    # What was typed goes back into the form on a refusal, except the key itself.
    entered = {name: form.get(name) for name in ("provider", "base_url", "models_allowed")}
    try:
        body = _key_input(form.fields)
    except ValidationError as invalid:
        return _keys_page(request, ctx, session, status=400, error=_in_words(invalid), entered=entered)
    try:
        developer_access.add_provider_key_of(
            ctx,
            session.subject,
            session.actor(request_id(request)),
            provider=body.provider,
            api_key=body.api_key,
            base_url=body.base_url,
            models_allowed=body.models_allowed,
        )
    except Refusal as refusal:  # the vault's rules: a key it cannot use, a base_url the egress policy refuses
        return _keys_page(request, ctx, session, status=status_for(refusal), error=refusal.message, entered=entered)
    return RedirectResponse("/portal/keys?done=key_added", status_code=303)


@router.post("/portal/keys/{key_id}/delete", response_model=None)
def delete_key(request: Request, ctx: Context, form: DeveloperForm, key_id: str) -> Response:
    session = form.session
    try:
        developer_access.delete_provider_key_of(
            ctx, session.subject, session.actor(request_id(request)), parse_uuid(key_id, field="key_id")
        )
    except Refusal as refusal:  # another developer's key reads exactly like an unknown one
        return refusal_page(request, refusal, area=PORTAL, session=session, back="/portal/keys")
    return RedirectResponse("/portal/keys?done=key_deleted", status_code=303)
