"""What the operator console's overview shows (SPEC §21): usage and revenue per day, open
payouts, the reconciliation result, and the top-ups the last Stripe sync flagged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from ..domain.payouts import PayoutStatus
from .context import ServiceContext
from .payout_queries import payout_gauges
from .reconcile import last_run
from .repositories import DailyUsage, ReconciliationRun, SyncRow
from .stripe_sync import StripeSyncSection, last_sync_flags

MAX_DAYS = 366
OPEN_PAYOUT_STATUSES = (PayoutStatus.PENDING, PayoutStatus.PROCESSING)


@dataclass(frozen=True, slots=True)
class DayRange:
    """The UTC days ``first`` to ``last``, both included."""

    first: date
    last: date

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=UTC)


def last_days(today: date, count: int) -> DayRange:
    count = max(1, min(count, MAX_DAYS))
    return DayRange(today - timedelta(days=count - 1), today)


def usage_per_day(ctx: ServiceContext, days: DayRange) -> list[DailyUsage]:
    """One entry per day of the range, in order; a day without usage has zeros."""
    with ctx.reader() as uow:
        found = {row.day: row for row in uow.reports.usage_per_day(days.start, days.end)}
    return [found.get(day.isoformat()) or DailyUsage(day.isoformat(), 0, 0, 0, 0) for day in days.days]


@dataclass(frozen=True, slots=True)
class Overview:
    days: DayRange
    usage: list[DailyUsage]
    open_payouts: dict[PayoutStatus, int]
    oldest_open_payout_at: datetime | None
    # The newest stored run (API, CLI, periodic or the console's reconciliation page): the
    # overview never runs every check itself, so it stays cheap on a large ledger.
    reconciliation: ReconciliationRun | None
    flagged_topups: tuple[SyncRow, ...]
    last_sync_at: datetime | None


def console_overview(ctx: ServiceContext, *, day_count: int = 30) -> Overview:
    days = last_days(ctx.clock().astimezone(UTC).date(), day_count)
    gauges = payout_gauges(ctx)
    with ctx.reader() as uow:
        sync = last_sync_flags(uow)
    return Overview(
        days=days,
        usage=usage_per_day(ctx, days),
        open_payouts={status: gauges.by_status[status] for status in OPEN_PAYOUT_STATUSES},
        oldest_open_payout_at=gauges.oldest_open_created_at,
        reconciliation=last_run(ctx),
        flagged_topups=sync.flagged,
        last_sync_at=sync.last_sync_at,
    )


def last_stripe_sync(ctx: ServiceContext) -> StripeSyncSection:
    """The last stored Stripe sync: when, its summary, and the rows it flagged."""
    with ctx.reader() as uow:
        return last_sync_flags(uow)
