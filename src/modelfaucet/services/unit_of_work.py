"""The unit of work: what a service is handed to read and change the books.

A service opens one unit of work per operation (``with ctx.unit_of_work() as uow``),
asks its repositories (``uow.ledger``, ``uow.payouts``, …) for what it needs, and calls
``uow.commit()`` when everything it decided is written. Leaving the block without
``commit()`` — a refusal, a bug, anything raised — rolls the whole operation back: a
failed request writes nothing (SPEC §3).

Audit entries are declared, not written: ``uow.audit.add(AuditEntry(…))`` collects them
and ``commit()`` writes them last, in the same transaction (the audit chain's lock is
then held only for the last statement, and never taken before a row lock).

Two implementations: :class:`modelfaucet.adapters.db.unit_of_work.SqlUnitOfWork` (SQLite
and PostgreSQL) and the in-memory one under ``tests/fakes`` that the service tests of
the money rules use. Both satisfy this protocol; mypy checks that.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from ..domain.outcomes import ServiceUnavailable
from .repositories import (
    AdjustmentRepository,
    AuditLog,
    CatalogRepository,
    DeveloperAccessRepository,
    HoldRepository,
    IdempotencyRepository,
    LedgerRepository,
    PayoutRepository,
    ProvenanceRepository,
    ProviderKeyRepository,
    ReconciliationRunRepository,
    ReportRepository,
    SessionRepository,
    StatementRepository,
    StripeEventRepository,
    TopupRepository,
    UsageRepository,
    WebSessionRepository,
)
from .signals import Signals


class ConcurrentWrite(ServiceUnavailable):
    """A concurrent transaction won a race this unit of work lost: a deadlock or a
    serialisation failure (any unit of work), or a usage ``request_id`` another transaction
    stored first (``uow.usage.add_many``). Nothing of this unit of work was kept and deciding
    again, in a fresh unit of work, is safe: a service that can, retries (``record_usage``);
    otherwise the caller is told to retry (503)."""

    def __init__(
        self,
        message: str = "A concurrent request changed the same records; retry shortly.",
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, details=details)


class UnitOfWork(Protocol):
    """One database transaction and the repositories that work inside it.

    Leaving it by a deadlock or a serialisation failure raises :class:`ConcurrentWrite`.
    """

    @property
    def now(self) -> datetime:
        """The moment this unit of work began: every row it writes carries it."""
        ...

    @property
    def signals(self) -> Signals:
        """Who is told what committed (``after_commit(partial(uow.signals.…))``), for the
        services that have a unit of work but no context."""
        ...

    @property
    def ledger(self) -> LedgerRepository: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    @property
    def adjustments(self) -> AdjustmentRepository: ...

    @property
    def payouts(self) -> PayoutRepository: ...

    @property
    def topups(self) -> TopupRepository: ...

    @property
    def stripe_events(self) -> StripeEventRepository: ...

    @property
    def usage(self) -> UsageRepository: ...

    @property
    def catalog(self) -> CatalogRepository: ...

    @property
    def holds(self) -> HoldRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def web_sessions(self) -> WebSessionRepository: ...

    @property
    def provider_keys(self) -> ProviderKeyRepository: ...

    @property
    def reports(self) -> ReportRepository: ...

    @property
    def provenance(self) -> ProvenanceRepository: ...

    @property
    def developers(self) -> DeveloperAccessRepository: ...

    @property
    def statements(self) -> StatementRepository: ...

    @property
    def reconciliation_runs(self) -> ReconciliationRunRepository: ...

    @property
    def dialect(self) -> str:
        """``sqlite``, ``postgresql`` or ``memory``: for the few choices that depend on it."""
        ...

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None:
        """Write the collected audit entries, then commit. Only once per unit of work."""
        ...

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this unit of work has committed (in registration order);
        dropped if it rolls back. For what must only be told of committed work: metrics.
        The unit of work itself tells ``Signals.money_moved`` what its ledger posted, by
        reason, just before these callbacks run."""
        ...

    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Opens units of work. ``read_only`` ones never take the write lock; ``snapshot`` ones
    see one consistent moment of the books across all their queries."""

    def __call__(self, *, read_only: bool = False, snapshot: bool = False, autocommit: bool = False) -> UnitOfWork: ...
