"""The date fields of the console's and the portal's forms: UTC days, both ends included.

One parser and one conversion for every page, so a form's "to" day means the same thing
everywhere and the last day a date can name (9999-12-31, whose next day does not exist)
is a refusal in words, not an overflow.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from ...domain.outcomes import InvalidRequest


def form_day(value: str | None, *, field: str) -> date | None:
    """The day a form field names (``YYYY-MM-DD``); None when it is blank."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"{field} must be a date like 2026-11-01.", details={"field": field}) from None


def last_form_day(value: str | None, *, field: str) -> date | None:
    """A form's "to" day, which the window includes: refused when no day follows it."""
    day = form_day(value, field=field)
    if day == date.max:
        raise InvalidRequest(f"{field} must be {date.max - timedelta(days=1)} or earlier.", details={"field": field})
    return day


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def day_window(first: str | None, last: str | None) -> tuple[datetime | None, datetime | None]:
    """The instants of a form's from/to days (both included); None where blank."""
    start, end = form_day(first, field="from"), last_form_day(last, field="to")
    return (
        None if start is None else day_start(start),
        None if end is None else day_start(end + timedelta(days=1)),
    )
