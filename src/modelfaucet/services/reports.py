"""CSV reports (SPEC §10): a registry of reports, each streamed from a server-side cursor.

A report is a :class:`ReportSpec`: its exact header and a function that, given the report
repository of an open read unit of work and optional time bounds, yields formatted rows.
:func:`stream_report` holds the read unit of work open while the CSV streams: rows leave
the database in pages (``uow.reports`` reads from a server-side cursor) and the CSV leaves
in chunks, so memory stays flat whatever the row count. Every report goes through the one
CSV writer (:mod:`modelfaucet.adapters.csvout`).

Adding a report is one entry in :data:`REPORTS`. Time bounds are half-open: ``from``
inclusive, ``to`` exclusive, in UTC. Reports never carry a provider key or any other
secret: only the columns listed here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..adapters.csvout import Cell, header_bytes, stream_csv
from ..domain.money import format_usd
from ..domain.outcomes import InvalidRequest, NotFound
from ..domain.timestamps import iso
from ..domain.windows import check_order
from .context import ServiceContext
from .repositories import ReportRepository

RowsFn = Callable[[ReportRepository, datetime | None, datetime | None], Iterator[Sequence[Cell]]]
CountFn = Callable[[ReportRepository, datetime | None, datetime | None], int]


@dataclass(frozen=True)
class ReportSpec:
    name: str
    header: tuple[str, ...]
    rows: RowsFn
    # How many rows the report will have (for a progress bar); optional.
    count: CountFn | None = None
    # The database may format it (``ReportRepository.report_csv_lines``), byte-identical.
    sql_formatted: bool = True

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"


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
    check_order(start, end)


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
    """Yield the report's CSV bytes; the read unit of work lives as long as the iterator."""
    spec = get_report(name)
    check_bounds(start, end)
    with ctx.reader() as uow:
        lines = uow.reports.report_csv_lines(spec.name, start, end) if spec.sql_formatted else None
        if lines is None:
            yield from stream_csv(spec.header, spec.rows(uow.reports, start, end))
        else:
            yield header_bytes(spec.header)
            yield from lines


def stream_report_python(
    ctx: ServiceContext,
    name: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Iterator[bytes]:
    """The report through the Python CSV writer whatever the engine (the reference of the SQL path)."""
    spec = get_report(name)
    check_bounds(start, end)
    with ctx.reader() as uow:
        yield from stream_csv(spec.header, spec.rows(uow.reports, start, end))


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
    with ctx.reader() as uow:
        yield from spec.rows(uow.reports, start, end)


def count_report_rows(
    ctx: ServiceContext, name: str, *, start: datetime | None = None, end: datetime | None = None
) -> int | None:
    spec = get_report(name)
    if spec.count is None:
        return None
    with ctx.reader() as uow:
        return spec.count(uow.reports, start, end)


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


def _usage_rows(reports: ReportRepository, start: datetime | None, end: datetime | None) -> Iterator[Sequence[Cell]]:
    # The hot loop of a million-row export: whole pages from the server-side cursor,
    # tuples unpacked; iso() and format_usd() carry their own fast paths.
    for page in reports.usage_report_pages(start, end):
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


def _usage_count(reports: ReportRepository, start: datetime | None, end: datetime | None) -> int:
    return reports.usage_report_count(start, end)


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


def _revenue_rows(reports: ReportRepository, start: datetime | None, end: datetime | None) -> Iterator[Sequence[Cell]]:
    """One row per app (apps without usage in the window show zeros), by public_app_id."""
    for row in reports.revenue_report_rows(start, end):
        yield (
            row.public_app_id,
            row.developer_id,
            row.developer_email,
            row.calls,
            format_usd(row.upstream_cost_units),
            format_usd(row.retail_price_units),
            format_usd(row.channel_revenue_units),
            format_usd(row.platform_revenue_units),
        )


def _revenue_count(reports: ReportRepository, _start: datetime | None, _end: datetime | None) -> int:
    return reports.app_count()


# --- payouts.csv ------------------------------------------------------------------------

PAYOUTS_HEADER = (
    "created_at",
    "updated_at",
    "payout_id",
    "developer_id",
    "developer_email",
    "amount_usd",
    "status",
    "provider",
    "provider_payout_id",
)


def _payout_rows(reports: ReportRepository, start: datetime | None, end: datetime | None) -> Iterator[Sequence[Cell]]:
    """Every payout created within [start, end), oldest first."""
    for row in reports.payout_report_rows(start, end):
        payout = row.payout
        yield (
            iso(payout.created_at),
            iso(payout.updated_at),
            payout.id,
            payout.developer_id,
            row.developer_email,
            format_usd(payout.amount_units),
            str(payout.status),
            payout.provider,
            payout.provider_payout_id,
        )


def _payout_count(reports: ReportRepository, start: datetime | None, end: datetime | None) -> int:
    return reports.payout_report_count(start, end)


REPORTS: dict[str, ReportSpec] = {
    "usage": ReportSpec("usage", USAGE_HEADER, _usage_rows, _usage_count),
    "revenue": ReportSpec("revenue", REVENUE_HEADER, _revenue_rows, _revenue_count),
    "payouts": ReportSpec("payouts", PAYOUTS_HEADER, _payout_rows, _payout_count),
}
