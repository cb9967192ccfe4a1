"""What a developer earned (SPEC §17).

Pure: the groupings of the earnings report, one line of it, the totals of several lines,
and which ledger reasons count as earned or paid out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from enum import StrEnum

from .ledger import Reason
from .outcomes import InvalidRequest
from .windows import Window


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


# A chart of earnings per day draws one bar per UTC day; a year is the most it draws.
MAX_SERIES_DAYS = 366
SERIES_TOO_LONG = f"A range of at most {MAX_SERIES_DAYS} days can be charted per day."

_JUST_BEFORE = timedelta(microseconds=1)


def series_days(window: Window) -> list[date]:
    """Every UTC day the half-open window touches, in order (none for an empty window);
    more than :data:`MAX_SERIES_DAYS` is refused."""
    if window.end <= window.start:
        return []
    first = window.start.astimezone(UTC).date()
    last = (window.end - _JUST_BEFORE).astimezone(UTC).date()
    count = (last - first).days + 1
    if count > MAX_SERIES_DAYS:
        raise InvalidRequest(SERIES_TOO_LONG, details={"field": "from", "max_days": MAX_SERIES_DAYS})
    return [first + timedelta(days=offset) for offset in range(count)]


def daily_series(lines: Iterable[EarningsLine], days: Iterable[date]) -> tuple[EarningsLine, ...]:
    """One line per day, in order: the day's line, or zeros for a day without usage. Every
    line must be one of the days (a line outside them is a caller's bug, not dropped)."""
    by_day = {line.key: line for line in lines}
    series = tuple(by_day.pop(day.isoformat(), EarningsLine(day.isoformat(), 0, 0, 0, 0, 0)) for day in days)
    if by_day:
        raise ValueError(f"earnings lines outside the days of the series: {sorted(by_day)}")
    return series


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
