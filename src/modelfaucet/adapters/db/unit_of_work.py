"""The SQL unit of work: one database transaction and its repositories.

``SqlUnitOfWork`` opens a connection and a transaction on ``__enter__`` (``BEGIN
IMMEDIATE`` on SQLite for writes, a deferred read transaction for ``read_only``; a
REPEATABLE READ read-only snapshot on PostgreSQL for ``snapshot``), hands out the
repositories bound to that connection, and on ``commit()`` writes the collected audit
entries (unchained), then the balances the ledger left for the commit
(:meth:`~.ledger.SqlLedger.post_at_commit`: hot rows locked last), and commits; then it
has the audit chain extended in a short transaction of its own on the same connection
(:func:`~.audit.chain_committed`), so audited writes never queue on the chain lock while
they hold their own row locks — or, where the database has a process chainer (the API
process: :class:`~.audit.BackgroundChainer`), only tells it, and the chaining happens off
the request's path. ``autocommit`` read-only units of work (PostgreSQL) send no BEGIN or
ROLLBACK: each statement reads on its own.
Leaving without ``commit()`` rolls everything back; leaving by a deadlock or
serialisation failure raises :class:`~modelfaucet.services.unit_of_work.ConcurrentWrite`
(the services' name for "nothing was kept, decide again").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, RootTransaction

from ...domain.outcomes import LedgerInvariantViolation
from ...services.signals import NoSignals, Signals
from ...services.unit_of_work import ConcurrentWrite
from . import audit
from .database import Database
from .engine import DEFERRED_OPTION
from .errors import lost_a_race
from .ledger import SqlLedger
from .repositories.adjustments import SqlAdjustments
from .repositories.audit import SqlAuditLog
from .repositories.catalog import SqlCatalog
from .repositories.developers import SqlDeveloperAccess
from .repositories.holds import SqlHolds
from .repositories.idempotency import SqlIdempotencyKeys
from .repositories.payouts import SqlPayouts
from .repositories.provenance import SqlProvenance
from .repositories.provider_keys import SqlProviderKeys
from .repositories.reconciliation_runs import SqlReconciliationRuns
from .repositories.reports import SqlReports
from .repositories.sessions import SqlSessions
from .repositories.statements import SqlStatements
from .repositories.stripe_events import SqlStripeEvents
from .repositories.topups import SqlTopups
from .repositories.usage import SqlUsage
from .repositories.web_sessions import SqlWebSessions

log = logging.getLogger(__name__)


class SqlUnitOfWork:
    """Implements :class:`modelfaucet.services.unit_of_work.UnitOfWork` on SQLite and PostgreSQL."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        *,
        read_only: bool = False,
        snapshot: bool = False,
        autocommit: bool = False,
        signals: Signals | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.signals: Signals = signals or NoSignals()
        self._after_commit: list[Callable[[], None]] = []
        self.read_only = read_only or snapshot
        self.snapshot = snapshot
        self.autocommit = autocommit and self.read_only and not snapshot
        self._connection: Connection | None = None
        self._transaction: RootTransaction | None = None
        self._committed = False

    @property
    def dialect(self) -> str:
        return self.db.dialect

    @property
    def connection(self) -> Connection:
        """The open connection (for adapters that stream, such as CSV reports)."""
        if self._connection is None:
            raise LedgerInvariantViolation("the unit of work is not open")
        return self._connection

    def __enter__(self) -> SqlUnitOfWork:
        self.now = self.clock()
        raw = self.db.engine.connect()
        options: dict[str, Any] = {}
        if self.read_only:
            options[DEFERRED_OPTION] = True
            if self.snapshot and self.db.is_postgres:
                options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            elif self.autocommit and self.db.is_postgres:
                options.update(isolation_level="AUTOCOMMIT")
        connection = raw.execution_options(**options) if options else raw
        try:
            self._transaction = connection.begin()
        except BaseException:
            raw.close()
            raise
        self._connection = connection
        now = self.now
        self.ledger = SqlLedger(connection, now, self.db.system_account_ids)
        self.audit = SqlAuditLog(connection, now)
        self.idempotency = SqlIdempotencyKeys(connection, now)
        self.adjustments = SqlAdjustments(connection, now)
        self.payouts = SqlPayouts(connection, now)
        self.topups = SqlTopups(connection, now)
        self.stripe_events = SqlStripeEvents(connection, now)
        self.usage = SqlUsage(connection, now)
        self.catalog = SqlCatalog(connection, now)
        self.holds = SqlHolds(connection, now)
        self.sessions = SqlSessions(connection, now)
        self.web_sessions = SqlWebSessions(connection, now)
        self.provider_keys = SqlProviderKeys(connection, now)
        self.reports = SqlReports(connection, now)
        self.provenance = SqlProvenance(connection, now)
        self.developers = SqlDeveloperAccess(connection, now)
        self.statements = SqlStatements(connection, now)
        self.reconciliation_runs = SqlReconciliationRuns(connection, now)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        transaction, self._transaction = self._transaction, None
        if connection is None:
            return
        try:
            if transaction is not None and transaction.is_active and not self._committed:
                transaction.rollback()
        finally:
            connection.close()
        if exc is not None and lost_a_race(exc):
            raise ConcurrentWrite() from exc

    def commit(self) -> None:
        if self._transaction is None or self._committed:
            raise LedgerInvariantViolation("commit outside an open unit of work, or twice")
        if self.read_only and self.audit.pending:
            raise LedgerInvariantViolation("a read-only unit of work cannot write audit entries")
        self.audit.flush()
        self.ledger.move_at_commit()  # hot balances last: their row locks last only the COMMIT
        self._transaction.commit()
        self._committed = True
        self.ledger.committed()
        if self.ledger.moved:
            self.signals.money_moved(dict(self.ledger.moved))
        chainer = self.db.audit_chainer
        if self.audit.written and chainer is not None and not self.audit.chain_locked:
            chainer.wanted()  # the process's chainer chains them, off this request's path
        elif self.audit.written or self.audit.chain_locked:
            self._chain_audit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def _chain_audit(self) -> None:
        """Chain the audit rows just committed (and any others waiting). The operation has
        committed whatever happens here: a failure only leaves rows unchained for the next
        chainer or ``audit verify``, so it is logged, never raised to the caller."""
        try:
            audit.chain_committed(self.connection, durable=False)
        except Exception:
            log.exception("audit rows committed but not chained yet; the next chainer will chain them")

    def after_commit(self, callback: Callable[[], None]) -> None:
        if self._committed:
            raise LedgerInvariantViolation("after_commit on a unit of work that already committed")
        self._after_commit.append(callback)

    def rollback(self) -> None:
        self._after_commit = []
        if self._transaction is not None and self._transaction.is_active:
            self._transaction.rollback()


class SqlUnitOfWorkFactory:
    """Implements :class:`modelfaucet.services.unit_of_work.UnitOfWorkFactory`."""

    def __init__(self, db: Database, clock: Callable[[], datetime], signals: Signals | None = None) -> None:
        self.db = db
        self.clock = clock
        self.signals = signals

    def __call__(self, *, read_only: bool = False, snapshot: bool = False, autocommit: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self.db, self.clock, read_only=read_only, snapshot=snapshot, autocommit=autocommit, signals=self.signals
        )
