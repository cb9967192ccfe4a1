"""The operator console (SPEC §21): pages for reading, plain forms for acting.

Every page takes an ``OperatorPage`` session; every action an ``OperatorForm`` (CSRF
checked) and calls the same service as the API with the operator's own name as the
actor, so it lands in the audit trail like an API call. A refusal of the service is shown
in words (:func:`~modelfaucet.http.web.render.refusal_page`) with the API's status.
"""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ...domain.money import UNITS_PER_USD
from ...services.console_overview import console_overview
from ..deps import Context
from .areas import CONSOLE
from .auth import OperatorPage
from .charts import ChartKind, Series, day_chart
from .render import render, usd

router = APIRouter(include_in_schema=False)


def dollars(units: int) -> Decimal:
    return Decimal(units) / UNITS_PER_USD


def _usd_cell(value: Decimal | int) -> str:
    return usd(int(Decimal(value) * UNITS_PER_USD))


@router.get("/console", response_class=HTMLResponse)
def overview(request: Request, ctx: Context, session: OperatorPage) -> HTMLResponse:
    found = console_overview(ctx)
    days = found.days.days
    revenue = day_chart(
        "revenue-per-day",
        "Usage charged and platform revenue per day",
        days,
        [
            Series("Charged to users", [dollars(d.retail_price_units) for d in found.usage]),
            Series("Platform revenue", [dollars(d.platform_revenue_units) for d in found.usage]),
        ],
        unit="USD",
        kind=ChartKind.LINE,
        format_value=_usd_cell,
    )
    calls = day_chart(
        "calls-per-day",
        "Model calls per day",
        days,
        [Series("Calls", [d.calls for d in found.usage])],
        unit="calls",
        kind=ChartKind.BAR,
    )
    return render(
        request,
        "console/overview.html",
        area=CONSOLE,
        session=session,
        title="Overview",
        found=found,
        charts=(revenue, calls),
    )
