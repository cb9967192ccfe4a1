"""Admin: CSV reports (SPEC §10) — one route over the report registry.

``GET /v1/admin/reports/{name}.csv`` serves every report in
:data:`modelfaucet.services.reports.REPORTS` (usage, revenue, and payouts once registered).
The request is validated (admin token, report name, ``from``/``to``) before the first byte
is sent, so a bad request is a normal JSON error; then the CSV streams from the database.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from ...services import reports
from ..deps import AdminActor, Context
from ..schemas import error_responses

router = APIRouter(tags=["reports"])

_TIME_HELP = "ISO-8601 date or time (UTC if no offset); from is inclusive, to exclusive."


@router.get(
    "/v1/admin/reports/{name}.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "The report, header row first."},
        **error_responses(400, 401, 404),
    },
)
def get_report_csv(
    ctx: Context,
    _actor: AdminActor,
    name: str,
    from_: Annotated[str | None, Query(alias="from", max_length=64, description=_TIME_HELP)] = None,
    to: Annotated[str | None, Query(max_length=64, description=_TIME_HELP)] = None,
) -> StreamingResponse:
    spec = reports.get_report(name)
    start = reports.parse_time_bound(from_, field="from")
    end = reports.parse_time_bound(to, field="to")
    reports.check_bounds(start, end)
    return StreamingResponse(
        reports.stream_report(ctx, spec.name, start=start, end=end),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="{spec.filename}"',
            "cache-control": "no-store",
        },
    )
