"""What a developer earned, and the windows money is read over (SPEC §17, §19).

Pure: the groupings of the earnings report, one line of it, the totals of several lines,
the default reading window (the calendar month, in UTC, that the window ends in), and
which ledger reasons count as earned or paid out.
Windows are half-open everywhere: ``start`` inclusive, ``end`` exclusive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from .ledger import Reason
from .outcomes import InvalidRequest


class EarningsGrouping(StrEnum):
    """How earnings lines are keyed: the UTC day (``2026-11-01``), the ``public_app_id``,
    the feature key, or ``provider/model``."""

    DAY = "day"
    APP = "app"
    FEATURE = "feature"
    MODEL = "model"


@dataclass(frozen=True, slots=True)
class EarningsLine:
    """The usage of one group over a window, and the developer's share of it."""

    key: str
    requests: int
    input_tokens: int
    output_tokens: int
    retail_units: int
    channel_revenue_units: int


def total_of(lines: Iterable[EarningsLine]) -> EarningsLine:
    """The lines added up, under the key ``total``."""
    requests = input_tokens = output_tokens = retail = channel = 0
    for line in lines:
        requests += line.requests
        input_tokens += line.input_tokens
        output_tokens += line.output_tokens
        retail += line.retail_units
        channel += line.channel_revenue_units
    return EarningsLine("total", requests, input_tokens, output_tokens, retail, channel)


@dataclass(frozen=True, slots=True)
class Window:
    """``start`` ≤ t < ``end``, both aware UTC datetimes."""

    start: datetime
    end: datetime


_JUST_BEFORE = timedelta(microseconds=1)


def month_start(instant: datetime) -> datetime:
    """Midnight UTC of the first day of ``instant``'s month."""
    moment = instant.astimezone(UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def reading_window(start: datetime | None, end: datetime | None, *, now: datetime) -> Window:
    """The window a read covers: ``end`` defaults to ``now``; ``start`` to the first instant
    of the month the window ends in (so ``to=2026-11-01`` alone reads October)."""
    end = (now if end is None else end).astimezone(UTC)
    start = month_start(end - _JUST_BEFORE) if start is None else start.astimezone(UTC)
    if end < start:
        raise InvalidRequest("to must not be before from.", details={"field": "to"})
    return Window(start, end)


# What a developer wallet "earned": the credits usage posts to it — the channel revenue,
# and on ``developer_key`` calls the upstream cost the developer's own key paid.
EARNING_REASONS = frozenset({Reason.USAGE_CHANNEL_REVENUE, Reason.USAGE_PROVIDER_COST})
# What left it as a payout.
PAYOUT_REASONS = frozenset({Reason.MOCK_PAYOUT_PAID})


@dataclass(frozen=True, slots=True)
class LifetimeTotals:
    earned_units: int
    paid_out_units: int


def lifetime_totals(totals_by_reason: Mapping[str, int]) -> LifetimeTotals:
    """Earned and paid out, from a wallet's signed totals per reason."""
    earned = sum(totals_by_reason.get(reason, 0) for reason in EARNING_REASONS)
    paid_out = -sum(totals_by_reason.get(reason, 0) for reason in PAYOUT_REASONS)
    return LifetimeTotals(earned, paid_out)
