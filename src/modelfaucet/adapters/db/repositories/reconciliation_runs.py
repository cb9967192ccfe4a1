"""Reconciliation runs: the only code that knows the ``reconciliation_runs`` table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select

from ....domain.reconciliation import RunSource
from ....domain.timestamps import as_utc
from ....services.repositories import ReconciliationRun
from ..tables import reconciliation_runs


class SqlReconciliationRuns:
    """Implements :class:`modelfaucet.services.repositories.ReconciliationRunRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    def add(self, run: ReconciliationRun) -> None:
        self.connection.execute(
            insert(reconciliation_runs).values(
                id=run.id,
                source=run.source.value,
                finished_at=run.finished_at,
                mismatches=run.mismatches,
                summary=run.summary,
            )
        )

    def newest(self) -> ReconciliationRun | None:
        table = reconciliation_runs
        # One row from the end of ix_reconciliation_runs_finished, however many runs are kept.
        stmt = select(table).order_by(table.c.finished_at.desc(), table.c.id.desc()).limit(1)
        row = self.connection.execute(stmt).first()
        if row is None:
            return None
        return ReconciliationRun(
            id=row.id,
            source=RunSource(row.source),
            finished_at=as_utc(row.finished_at),
            mismatches=row.mismatches,
            summary=row.summary,
        )
