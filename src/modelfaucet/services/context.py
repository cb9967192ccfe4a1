"""What every service needs: units of work, the settings, a clock and who is acting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..adapters.db.database import Database
from ..adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ..config import Settings
from .signals import NoSignals, Signals
from .unit_of_work import UnitOfWork, UnitOfWorkFactory


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ServiceContext:
    """The composition root hands this to every service.

    ``db`` builds the SQL units of work; tests of the money rules pass ``units`` (an
    in-memory factory) and no database at all. ``signals`` is told what committed (metrics).
    """

    db: Database
    settings: Settings
    clock: Callable[[], datetime] = field(default=utcnow)
    units: UnitOfWorkFactory | None = None
    signals: Signals = field(default_factory=NoSignals)

    def unit_of_work(self) -> UnitOfWork:
        """A write unit of work: commit it, or everything it did is rolled back."""
        return self._factory()()

    def reader(self, *, snapshot: bool = False, autocommit: bool = False) -> UnitOfWork:
        """A read-only unit of work; ``snapshot`` sees one moment across all its queries.
        ``autocommit``: no transaction around the reads, each statement sees the committed
        rows of its own moment (what a READ COMMITTED transaction gives each statement
        anyway) and no BEGIN and ROLLBACK are sent; for a few independent look-ups on a hot
        path, never for work that needs a transaction (local settings, server-side cursors)."""
        return self._factory()(read_only=True, snapshot=snapshot, autocommit=autocommit)

    def _factory(self) -> UnitOfWorkFactory:
        if self.units is not None:
            return self.units
        if self.db is None:
            raise RuntimeError("ServiceContext needs a database or a unit-of-work factory")
        return SqlUnitOfWorkFactory(self.db, self.clock, self.signals)


@dataclass(frozen=True)
class Actor:
    """Who performs an operation, for the audit trail."""

    name: str
    request_id: str | None = None
