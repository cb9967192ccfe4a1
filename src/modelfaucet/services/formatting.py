"""Formatting of stored values for output."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(value: datetime | None) -> str:
    """UTC ISO-8601 with a Z; SQLite hands back naive datetimes, which are UTC here."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
