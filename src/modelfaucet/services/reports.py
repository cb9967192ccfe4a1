"""CSV reports (SPEC §10): a registry of reports, each streamed from a server-side cursor.

A report is a :class:`ReportSpec`: its exact header and a function that, given a read-only
connection and optional time bounds, yields already-formatted rows. :func:`stream_report`
runs it inside ``ctx.db.read()`` with ``stream_results``/``yield_per`` so rows leave the
database in pages and the CSV leaves in chunks: memory stays flat whatever the row count.
Every report goes through the one CSV writer (:mod:`modelfaucet.adapters.csvout`).

Adding a report is one entry in :data:`REPORTS` (the payouts report registers itself the
same way). Time bounds are half-open: ``from`` inclusive, ``to`` exclusive, in UTC.
Reports never carry a provider key or any other secret: only the columns listed here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, func, select

from ..adapters.csvout import Cell, stream_csv
from ..adapters.db.tables import apps, developers, usage_events
from ..domain.money import format_usd
from ..domain.outcomes import InvalidRequest, NotFound
from .context import ServiceContext
from .formatting import iso
from .payouts import PAYOUTS_HEADER, payouts_report_count, payouts_report_rows

# Rows fetched from the server-side cursor per round trip.
YIELD_PER = 2000

RowsFn = Callable[[Connection, datetime | None, datetime | None], Iterator[Sequence[Cell]]]
CountFn = Callable[[Connection, datetime | None, datetime | None], int]


@dataclass(frozen=True)
class ReportSpec:
    name: str
    header: tuple[str, ...]
    rows: RowsFn
    # How many rows the report will have (for a progress bar); optional.
    count: CountFn | None = None

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"


def streaming(conn: Connection) -> Connection:
    """The connection set up for a server-side cursor read in pages of :data:`YIELD_PER`."""
    return conn.execution_options(stream_results=True, yield_per=YIELD_PER)


# Time bounds outside these are refused: their UTC form may not exist (year 9999 minus an
# offset overflows) and no stored row is older than the epoch.
EARLIEST_TIME_BOUND = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME_BOUND = datetime(9999, 1, 1, tzinfo=UTC)  # exclusive: years 1970 to 9998


def parse_time_bound(value: str | None, *, field: str) -> datetime | None:
    """Parse an ISO-8601 ``from``/``to`` query value; a time without offset is UTC.

    ASCII only, and within years 1970–9998 once converted to UTC; anything else (including
    a value whose conversion overflows) is an :class:`InvalidRequest` naming ``field``.
    """
    if value is None or value == "":
        return None
    refusal = InvalidRequest(
        f"{field} must be an ISO-8601 date or time between 1970 and 9998, such as 2025-01-31T00:00:00Z.",
        details={"field": field},
    )
    if not value.isascii():
        raise refusal
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise refusal from None
    if not EARLIEST_TIME_BOUND <= parsed < LATEST_TIME_BOUND:
        raise refusal
    return parsed


def check_bounds(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidRequest("to must not be before from.", details={"field": "to"})


def get_report(name: str) -> ReportSpec:
    spec = REPORTS.get(name)
    if spec is None:
        raise NotFound(f"Report {name} was not found.", details={"report": name})
    return spec


def stream_report(
    ctx: ServiceContext,
    name: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Iterator[bytes]:
    """Yield the report's CSV bytes; the read transaction lives as long as the iterator."""
    spec = get_report(name)
    check_bounds(start, end)
    with ctx.db.read() as conn:
        yield from stream_csv(spec.header, spec.rows(streaming(conn), start, end))


def iter_report_rows(
    ctx: ServiceContext,
    name: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Iterator[Sequence[Cell]]:
    """The report's formatted data rows (no header), streamed."""
    spec = get_report(name)
    check_bounds(start, end)
    with ctx.db.read() as conn:
        yield from spec.rows(streaming(conn), start, end)


def count_report_rows(
    ctx: ServiceContext, name: str, *, start: datetime | None = None, end: datetime | None = None
) -> int | None:
    spec = get_report(name)
    if spec.count is None:
        return None
    with ctx.db.read() as conn:
        return spec.count(conn, start, end)


# --- usage.csv -------------------------------------------------------------------------

USAGE_HEADER = (
    "created_at",
    "request_id",
    "public_app_id",
    "feature_key",
    "route_mode",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "upstream_cost_usd",
    "retail_price_usd",
    "channel_revenue_usd",
    "platform_revenue_usd",
)


def _usage_window(start: datetime | None, end: datetime | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if start is not None:
        conditions.append(usage_events.c.created_at >= start)
    if end is not None:
        conditions.append(usage_events.c.created_at < end)
    return conditions


def _usage_rows(conn: Connection, start: datetime | None, end: datetime | None) -> Iterator[Sequence[Cell]]:
    u = usage_events.c
    stmt: Select[tuple[object, ...]] = select(
        u.created_at,
        u.request_id,
        u.public_app_id,
        u.feature_key,
        u.route_mode,
        u.provider,
        u.model,
        u.input_tokens,
        u.output_tokens,
        u.upstream_cost_units,
        u.retail_price_units,
        u.channel_revenue_units,
        u.platform_revenue_units,
    )
    window = _usage_window(start, end)
    if window:
        stmt = stmt.where(and_(*window))
    result = conn.execute(stmt.order_by(u.created_at, u.request_id))
    # The hot loop of a million-row export: whole pages from the server-side cursor,
    # tuples unpacked; iso() and format_usd() carry their own fast paths.
    for page in result.partitions():
        row: Any
        for row in page:
            created, request_id, public_app_id, feature_key, route_mode, provider, model, tin, tout, up, re, ch, pl = (
                row
            )
            yield (
                iso(created),
                request_id,
                public_app_id,
                feature_key,
                route_mode,
                provider,
                model,
                int(tin),
                int(tout),
                format_usd(int(up)),
                format_usd(int(re)),
                format_usd(int(ch)),
                format_usd(int(pl)),
            )


def _usage_count(conn: Connection, start: datetime | None, end: datetime | None) -> int:
    stmt = select(func.count()).select_from(usage_events)
    window = _usage_window(start, end)
    if window:
        stmt = stmt.where(and_(*window))
    return int(conn.execute(stmt).scalar_one())


# --- revenue.csv -----------------------------------------------------------------------

REVENUE_HEADER = (
    "public_app_id",
    "developer_id",
    "developer_email",
    "total_calls",
    "upstream_cost_usd",
    "retail_price_usd",
    "channel_revenue_usd",
    "platform_revenue_usd",
)


def _revenue_rows(conn: Connection, start: datetime | None, end: datetime | None) -> Iterator[Sequence[Cell]]:
    """One row per app (apps without usage in the window show zeros), by public_app_id."""
    u = usage_events.c
    totals = select(
        u.app_id,
        func.count().label("calls"),
        func.sum(u.upstream_cost_units).label("upstream"),
        func.sum(u.retail_price_units).label("retail"),
        func.sum(u.channel_revenue_units).label("channel"),
        func.sum(u.platform_revenue_units).label("platform"),
    ).group_by(u.app_id)
    window = _usage_window(start, end)
    if window:
        totals = totals.where(and_(*window))
    sums = totals.subquery()
    stmt = (
        select(
            apps.c.public_app_id,
            apps.c.developer_id,
            developers.c.email,
            func.coalesce(sums.c.calls, 0).label("calls"),
            func.coalesce(sums.c.upstream, 0).label("upstream"),
            func.coalesce(sums.c.retail, 0).label("retail"),
            func.coalesce(sums.c.channel, 0).label("channel"),
            func.coalesce(sums.c.platform, 0).label("platform"),
        )
        .select_from(
            apps.join(developers, developers.c.id == apps.c.developer_id).outerjoin(sums, sums.c.app_id == apps.c.id)
        )
        .order_by(apps.c.public_app_id)
    )
    for row in conn.execute(stmt):
        yield (
            row.public_app_id,
            row.developer_id,
            row.email,
            int(row.calls),
            format_usd(int(row.upstream)),
            format_usd(int(row.retail)),
            format_usd(int(row.channel)),
            format_usd(int(row.platform)),
        )


def _revenue_count(conn: Connection, _start: datetime | None, _end: datetime | None) -> int:
    return int(conn.execute(select(func.count()).select_from(apps)).scalar_one())


REPORTS: dict[str, ReportSpec] = {
    "usage": ReportSpec("usage", USAGE_HEADER, _usage_rows, _usage_count),
    "revenue": ReportSpec("revenue", REVENUE_HEADER, _revenue_rows, _revenue_count),
    "payouts": ReportSpec("payouts", PAYOUTS_HEADER, payouts_report_rows, payouts_report_count),
}
