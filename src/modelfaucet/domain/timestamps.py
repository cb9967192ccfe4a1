"""Formatting of stored timestamps for output (pure: no clock, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_ZERO = timedelta(0)


def as_utc(value: datetime) -> datetime:
    """An aware datetime: SQLite hands back naive datetimes, which are UTC here."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def iso(value: datetime | None) -> str:
    """UTC ISO-8601 with a Z.

    A hot path (reports call it once per row): a UTC or naive value skips the conversion.
    """
    if value is None:
        return ""
    if value.tzinfo is None or value.utcoffset() == _ZERO:
        return value.replace(tzinfo=None).isoformat() + "Z"
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
