"""What the metrics scrape reads from the database: stored state, not events.

Payouts by status and the oldest open one, how many holds are held, and the newest
reconciliation run — whichever process made it (a ``modelfaucet reconcile`` is another
process). One read transaction of small aggregate or single-row index reads, so a scrape
costs the same however large the books grow.
"""

from __future__ import annotations

from dataclasses import dataclass

from .context import ServiceContext
from .payout_queries import PayoutGauges, payout_gauges_in
from .repositories import ReconciliationRun


@dataclass(frozen=True, slots=True)
class StoredGauges:
    payouts: PayoutGauges
    holds_open: int
    last_reconciliation: ReconciliationRun | None  # None before the first run


def read_gauges(ctx: ServiceContext) -> StoredGauges:
    with ctx.reader() as uow:
        return StoredGauges(
            payouts=payout_gauges_in(uow),
            holds_open=uow.holds.count_held(),
            last_reconciliation=uow.reconciliation_runs.newest(),
        )
