"""What every service needs: the database, the settings, a clock and who is acting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..adapters.db.database import Database
from ..config import Settings


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ServiceContext:
    db: Database
    settings: Settings
    clock: Callable[[], datetime] = field(default=utcnow)


@dataclass(frozen=True)
class Actor:
    """Who performs an operation, for the audit trail."""

    name: str
    request_id: str | None = None
