"""The windows money is read over (SPEC §17, §19): statements and earnings.

Half-open everywhere: ``start`` inclusive, ``end`` exclusive, so consecutive windows never
count a posting twice and a posting made exactly at ``end`` belongs to the next one. By
default a window is the calendar month (UTC) it ends in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .outcomes import InvalidRequest

WINDOW_REVERSED = "to must not be before from."


@dataclass(frozen=True, slots=True)
class Window:
    """``start`` ≤ t < ``end``, both aware UTC datetimes."""

    start: datetime
    end: datetime


_JUST_BEFORE = timedelta(microseconds=1)


def check_order(start: datetime | None, end: datetime | None) -> None:
    """Refuse a window whose ``to`` comes before its ``from`` (either may be open)."""
    if start is not None and end is not None and end < start:
        raise InvalidRequest(WINDOW_REVERSED, details={"field": "to"})


def month_start(instant: datetime) -> datetime:
    """Midnight UTC of the first day of ``instant``'s month."""
    moment = instant.astimezone(UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def reading_window(start: datetime | None, end: datetime | None, *, now: datetime) -> Window:
    """The window a read covers: ``end`` defaults to ``now``; ``start`` to the first instant
    of the month the window ends in (so ``to=2026-11-01`` alone reads October)."""
    end = (now if end is None else end).astimezone(UTC)
    start = month_start(end - _JUST_BEFORE) if start is None else start.astimezone(UTC)
    check_order(start, end)
    return Window(start, end)
