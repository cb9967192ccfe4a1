"""The operator console (SPEC §21): pages for reading, plain forms for acting.

Every page takes an ``OperatorPage`` session; every action an ``OperatorForm`` (CSRF
checked) and calls the same service as the API with the operator's own name as the
actor, so it lands in the audit trail like an API call. A refusal of the service is shown
in words (:func:`~modelfaucet.http.web.render.refusal_page`) with the API's status.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from ...domain.adjustments import AdjustmentKind, Direction
from ...domain.ledger import OwnerScope
from ...domain.money import UNITS_PER_USD, MoneyError, parse_usd
from ...domain.outcomes import InvalidRequest, NotFound, Refusal
from ...domain.payouts import TRANSITIONS, PayoutAction, PayoutStatus, decide
from ...services import reports as report_service
from ...services.apply_adjustment import AdjustWallet, apply_adjustment
from ...services.audit_trail import list_audit_entries
from ...services.console_overview import DayRange, console_overview, last_days, last_stripe_sync, usage_per_day
from ...services.payout_queries import get_payout, list_payouts
from ...services.reconcile import reconcile_ledger
from ...services.repositories import AuditQuery
from ...services.review_payout import ReviewPayout, review_payout
from ...services.statements import statement_of
from ...services.stripe_sync import SyncStripe, sync_stripe
from ...services.topups import recent_topups
from ...services.verify_audit import verify_audit_chain
from ...services.wallets import list_wallets, wallet_detail, wallet_entries
from ...services.web_sessions import WebSession
from ..deps import Context
from ..routers.statements import statement_response
from .areas import CONSOLE
from .auth import OperatorForm, OperatorPage, request_id
from .charts import ChartKind, Series, day_chart
from .days import day_window, form_day, last_form_day
from .render import refusal_page, render, usd

router = APIRouter(include_in_schema=False)

TOPUP_DAYS = 30
AUDIT_PAGE = 50
ENTRIES_PAGE = 25
# What each payout action is called on its button, and the flash code after it.
ACTIONS: dict[PayoutAction, tuple[str, str, bool]] = {
    # action: (button label, done code, takes a note)
    PayoutAction.APPROVE: ("Approve", "approved", True),
    PayoutAction.MARK_PAID: ("Mark paid", "paid", False),
    PayoutAction.CANCEL: ("Cancel payout", "cancelled", True),
    PayoutAction.MARK_FAILED: ("Mark failed", "failed", True),
}


def dollars(units: int) -> Decimal:
    return Decimal(units) / UNITS_PER_USD


def _usd_cell(value: Decimal | int) -> str:
    return usd(int(Decimal(value) * UNITS_PER_USD))


def _page(request: Request, template: str, session: WebSession, title: str, **values: Any) -> HTMLResponse:
    return render(request, template, area=CONSOLE, session=session, title=title, **values)


def _refused(request: Request, refusal: Refusal, session: WebSession, back: str) -> HTMLResponse:
    return refusal_page(request, refusal, area=CONSOLE, session=session, back=back)


def _read(request: Request, session: WebSession, back: str, read: Callable[[], HTMLResponse]) -> HTMLResponse:
    """A page whose reading may be refused (unknown id, bad filter): the refusal in words."""
    try:
        return read()
    except Refusal as refusal:
        return _refused(request, refusal, session, back)


def _payout_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise NotFound("Payout not found.", details={"payout_id": value}) from exc


def _wallet_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise NotFound("Wallet not found.", details={"wallet_id": value}) from exc


def usage_charts(days: DayRange, usage: list[Any]) -> tuple[Any, Any]:
    revenue = day_chart(
        "revenue-per-day",
        "Usage charged and platform revenue per day",
        days.days,
        [
            Series("Charged to users", [dollars(d.retail_price_units) for d in usage]),
            Series("Platform revenue", [dollars(d.platform_revenue_units) for d in usage]),
        ],
        unit="USD",
        kind=ChartKind.LINE,
        format_value=_usd_cell,
    )
    calls = day_chart(
        "calls-per-day",
        "Model calls per day",
        days.days,
        [Series("Calls", [d.calls for d in usage])],
        unit="calls",
        kind=ChartKind.BAR,
    )
    return revenue, calls


# --- overview -------------------------------------------------------------------------------


# A paging cursor is a row id: a positive 64-bit integer, or an answered 400 (never a 500
# from a value the database cannot hold).
PageCursor = Annotated[int | None, Query(ge=1, le=2**63 - 1)]

@router.get("/console", response_class=HTMLResponse)
def overview(request: Request, *, ctx: Context, session: OperatorPage) -> HTMLResponse:
    found = console_overview(ctx, day_count=14)
    return _page(
        request, "console/overview.html", session, "Overview", found=found, charts=usage_charts(found.days, found.usage)
    )


# --- payouts --------------------------------------------------------------------------------


@router.get("/console/payouts", response_class=HTMLResponse)
def payouts(request: Request, *, ctx: Context, session: OperatorPage, status: str = "") -> HTMLResponse:
    def read() -> HTMLResponse:
        chosen = None
        if status:
            try:
                chosen = PayoutStatus(status)
            except ValueError as exc:
                raise InvalidRequest("Unknown payout status.", details={"field": "status"}) from exc
        return _page(
            request,
            "console/payouts.html",
            session,
            "Payouts",
            payouts=list_payouts(ctx, status=chosen),
            statuses=list(PayoutStatus),
            chosen_status=status,
        )

    return _read(request, session, "/console/payouts", read)


def allowed_actions(status: PayoutStatus) -> list[PayoutAction]:
    """The actions that would move a payout of this status now (a repeat that changes
    nothing is not offered)."""
    return [
        action
        for action in PayoutAction
        if (status, action) in TRANSITIONS and decide(status, action).status_after != status
    ]


@router.get("/console/payouts/{payout_id}", response_class=HTMLResponse)
def payout_detail(request: Request, *, ctx: Context, session: OperatorPage, payout_id: str) -> HTMLResponse:
    def read() -> HTMLResponse:
        found = get_payout(ctx, _payout_id(payout_id))
        actions = [(action, *ACTIONS[action]) for action in allowed_actions(found.payout.status)]
        return _page(request, "console/payout.html", session, "Payout", found=found, actions=actions)

    return _read(request, session, "/console/payouts", read)


@router.post("/console/payouts/{payout_id}/{action}", response_model=None)
def payout_action(request: Request, *, ctx: Context, form: OperatorForm, payout_id: str, action: str) -> Response:
    back = f"/console/payouts/{payout_id}"
    try:
        chosen = PayoutAction(action.replace("-", "_"))
    except ValueError:
        return _refused(request, NotFound("No such payout action."), form.session, back)
    try:
        note = form.get("note").strip() or None
        if note is not None and len(note) > 1000:
            raise InvalidRequest("The note may be at most 1000 characters.", details={"field": "note"})
        command = ReviewPayout(_payout_id(payout_id), chosen, note)
        review_payout(ctx, command, actor=form.session.actor(request_id(request)))
    except Refusal as refusal:
        return _refused(request, refusal, form.session, back)
    return RedirectResponse(f"{back}?done={ACTIONS[chosen][1]}", status_code=303)


# --- wallets --------------------------------------------------------------------------------


@router.get("/console/wallets", response_class=HTMLResponse)
def wallets(
    request: Request,
    *,
    ctx: Context,
    session: OperatorPage,
    owner_scope: str = "",
    owner_id: str = "",
    public_app_id: str = "",
    external_user_id: str = "",
    email: str = "",
) -> HTMLResponse:
    searched = any((owner_scope, owner_id, public_app_id, external_user_id, email))

    def read() -> HTMLResponse:
        scope = None
        if owner_scope:
            try:
                scope = OwnerScope(owner_scope)
            except ValueError as exc:
                raise InvalidRequest("Unknown owner type.", details={"field": "owner_scope"}) from exc
        found = list_wallets(
            ctx,
            owner_scope=scope,
            owner_id=owner_id.strip() or None,
            public_app_id=public_app_id.strip() or None,
            external_user_id=external_user_id.strip() or None,
            developer_email=email.strip() or None,
            limit=100,
        )
        return _page(
            request,
            "console/wallets.html",
            session,
            "Wallets",
            wallets=found,
            searched=searched,
            scopes=[s for s in OwnerScope],
            form={
                "owner_scope": owner_scope,
                "owner_id": owner_id,
                "public_app_id": public_app_id,
                "external_user_id": external_user_id,
                "email": email,
            },
        )

    return _read(request, session, "/console/wallets", read)


@router.get("/console/wallets/{wallet_id}", response_class=HTMLResponse)
def wallet(
    request: Request, *, ctx: Context, session: OperatorPage, wallet_id: str, before: PageCursor = None
) -> HTMLResponse:
    def read() -> HTMLResponse:
        found = wallet_detail(ctx, _wallet_id(wallet_id))
        page = wallet_entries(ctx, found.wallet.account_id, before_id=before, limit=ENTRIES_PAGE)
        today = ctx.clock().astimezone(UTC).date()
        return _page(
            request,
            "console/wallet.html",
            session,
            "Wallet",
            found=found,
            page=page,
            before=before,
            kinds=list(AdjustmentKind),
            directions=list(Direction),
            idempotency_key=str(uuid.uuid4()),
            statement_from=(today.replace(day=1)).isoformat(),
            statement_to=today.isoformat(),
        )

    return _read(request, session, "/console/wallets", read)


@router.get("/console/wallets/{wallet_id}/statement.csv", response_model=None)
def wallet_statement(
    request: Request, *, ctx: Context, session: OperatorPage, wallet_id: str, start: str = "", end: str = ""
) -> Response:
    back = f"/console/wallets/{wallet_id}"
    try:
        # The form's end day is included, as on the reports page and in the portal.
        begin, finish = day_window(start, end)
        of = statement_of(ctx, _wallet_id(wallet_id), start=begin, end=finish)
    except Refusal as refusal:
        return _refused(request, refusal, session, back)
    return statement_response(ctx, of, csv=True)


@router.post("/console/wallets/{wallet_id}/adjust", response_model=None)
def adjust(request: Request, *, ctx: Context, form: OperatorForm, wallet_id: str) -> Response:
    back = f"/console/wallets/{wallet_id}"
    try:
        try:
            units = parse_usd(form.get("amount_usd").strip(), field="amount_usd")
        except MoneyError as exc:
            raise InvalidRequest(str(exc), details={"field": "amount_usd"}) from exc
        try:
            kind, direction = AdjustmentKind(form.get("kind")), Direction(form.get("direction"))
        except ValueError as exc:
            raise InvalidRequest("Choose a kind and a direction.", details={"field": "kind"}) from exc
        reason = form.get("reason").strip()
        if not reason or len(reason) > 1000:
            raise InvalidRequest("A reason (up to 1000 characters) is required.", details={"field": "reason"})
        key = form.get("idempotency_key").strip() or None
        command = AdjustWallet(_wallet_id(wallet_id), kind, direction, units, reason, key)
        apply_adjustment(ctx, command, actor=form.session.actor(request_id(request)))
    except Refusal as refusal:
        return _refused(request, refusal, form.session, back)
    return RedirectResponse(f"{back}?done=adjusted", status_code=303)


# --- reconciliation, top-ups, audit, reports ------------------------------------------------


@router.get("/console/reconciliation", response_class=HTMLResponse)
def reconciliation(request: Request, *, ctx: Context, session: OperatorPage) -> HTMLResponse:
    report = reconcile_ledger(ctx)
    mismatched = [line for line in report.items if line.delta_units != 0]
    return _page(
        request, "console/reconciliation.html", session, "Reconciliation", report=report, mismatched=mismatched
    )


@router.get("/console/topups", response_class=HTMLResponse)
def topups(request: Request, *, ctx: Context, session: OperatorPage) -> HTMLResponse:
    since = ctx.clock() - timedelta(days=TOPUP_DAYS)
    found = last_stripe_sync(ctx)
    return _page(
        request,
        "console/topups.html",
        session,
        "Top-ups",
        topups=recent_topups(ctx, since=since),
        sync=found,
        days=TOPUP_DAYS,
        stripe_configured=bool(ctx.settings.stripe_secret_key),
    )


@router.post("/console/topups/sync", response_model=None)
def topups_sync(request: Request, *, ctx: Context, form: OperatorForm) -> Response:
    try:
        sync_stripe(ctx, SyncStripe(), actor=form.session.actor(request_id(request)))
    except Refusal as refusal:
        return _refused(request, refusal, form.session, "/console/topups")
    return RedirectResponse("/console/topups?done=synced", status_code=303)


@router.get("/console/audit", response_class=HTMLResponse)
def audit(
    request: Request,
    *,
    ctx: Context,
    session: OperatorPage,
    actor: str = "",
    action: str = "",
    before: PageCursor = None,
) -> HTMLResponse:
    def read() -> HTMLResponse:
        query = AuditQuery(
            actor=actor.strip() or None, action=action.strip() or None, before_id=before, limit=AUDIT_PAGE
        )
        page = list_audit_entries(ctx, query)
        return _page(
            request,
            "console/audit.html",
            session,
            "Audit log",
            page=page,
            chain=verify_audit_chain(ctx),
            actor=actor,
            action=action,
            before=before,
        )

    return _read(request, session, "/console/audit", read)


@router.get("/console/reports", response_class=HTMLResponse)
def reports_page(
    request: Request, *, ctx: Context, session: OperatorPage, start: str = "", end: str = ""
) -> HTMLResponse:
    def read() -> HTMLResponse:
        today = ctx.clock().astimezone(UTC).date()
        first = form_day(start, field="from") or today - timedelta(days=29)
        last = last_form_day(end, field="to") or today
        if last < first:
            raise InvalidRequest("The end date must not be before the start date.", details={"field": "to"})
        days = DayRange(first, last) if (last - first).days < 366 else last_days(last, 366)
        usage = usage_per_day(ctx, days)
        return _page(
            request,
            "console/reports.html",
            session,
            "Reports",
            names=list(report_service.REPORTS),
            start=days.first.isoformat(),
            end=days.last.isoformat(),
            charts=usage_charts(days, usage),
            totals={
                "calls": sum(d.calls for d in usage),
                "retail": sum(d.retail_price_units for d in usage),
                "platform": sum(d.platform_revenue_units for d in usage),
            },
        )

    return _read(request, session, "/console/reports", read)


@router.get("/console/reports/{name}.csv", response_model=None)
def report_csv(
    request: Request, *, ctx: Context, session: OperatorPage, name: str, start: str = "", end: str = ""
) -> Response:
    try:
        spec = report_service.get_report(name)
        begin, finish = day_window(start, end)  # the form's end day is included
        report_service.check_bounds(begin, finish)
    except Refusal as refusal:
        return _refused(request, refusal, session, "/console/reports")
    return StreamingResponse(
        report_service.stream_report(ctx, spec.name, start=begin, end=finish),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{spec.filename}"', "cache-control": "no-store"},
    )
