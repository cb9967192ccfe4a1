"""What the developer portal's earnings page shows (SPEC §21), read at one moment.

The balance, the earnings of every UTC day of a window (days without usage are zeros, so a
chart has one bar per day), and the same window's earnings by app, feature and model. All
of it is read in one snapshot reader, so the groupings add up to the same totals and the
balance belongs to the same moment; every read is scoped by the developer's id, which
comes from the signed-in session, never from the request.

Payouts, statements and provider keys are read through :mod:`.developer_access` as the
API reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from ..domain.earnings import EarningsGrouping, EarningsLine, daily_series, series_days, total_of
from ..domain.windows import Window, check_order
from .context import ServiceContext
from .developer_access import DeveloperBalance, balance_in

# Without a ``from``, the chart shows this many days ending with the day of ``to``.
DEFAULT_DAYS = 30


@dataclass(frozen=True, slots=True)
class DeveloperDashboard:
    window: Window
    balance: DeveloperBalance
    days: tuple[date, ...]  # every UTC day the window touches, in order
    per_day: tuple[EarningsLine, ...]  # one line per day of ``days``, zero-filled
    by_app: tuple[EarningsLine, ...]
    by_feature: tuple[EarningsLine, ...]
    by_model: tuple[EarningsLine, ...]
    totals: EarningsLine


def dashboard_window(start: datetime | None, end: datetime | None, *, now: datetime) -> Window:
    """``end`` defaults to now; ``start`` to midnight UTC :data:`DEFAULT_DAYS` − 1 days
    before the day ``end`` falls in (the last instant before ``end``)."""
    end = (now if end is None else end).astimezone(UTC)
    if start is None:
        last_day = (end - timedelta(microseconds=1)).date()
        first_day = last_day - timedelta(days=DEFAULT_DAYS - 1)
        start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    start = start.astimezone(UTC)
    check_order(start, end)
    return Window(start, end)


def developer_dashboard(
    ctx: ServiceContext, developer_id: str, *, start: datetime | None = None, end: datetime | None = None
) -> DeveloperDashboard:
    """The developer's balance and earnings over [start, end), per day and grouped.

    A window of more than a year of days is refused (the chart's limit) before anything is
    read; the totals equal the developer's ``usage_channel_revenue`` postings of the window.
    """
    with ctx.reader(snapshot=True) as uow:
        window = dashboard_window(start, end, now=uow.now)
        days = series_days(window)
        balance = balance_in(uow, developer_id)
        app_ids = [app.id for app in uow.developers.apps(developer_id)]

        def grouped(grouping: EarningsGrouping) -> tuple[EarningsLine, ...]:
            return tuple(uow.developers.earnings(app_ids, start=window.start, end=window.end, grouping=grouping))

        per_day = daily_series(grouped(EarningsGrouping.DAY), days)
        by_app = grouped(EarningsGrouping.APP)
        by_feature = grouped(EarningsGrouping.FEATURE)
        by_model = grouped(EarningsGrouping.MODEL)
    return DeveloperDashboard(window, balance, tuple(days), per_day, by_app, by_feature, by_model, total_of(per_day))
