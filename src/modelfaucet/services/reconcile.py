"""reconcile_ledger: compare stored balances with the ledger and check the invariants.

The seed-shaped part (``summary`` and ``items``) compares each wallet's stored balance with
the balance rebuilt from its postings. The ``checks`` part goes further and names the rows
that break a rule (:mod:`.reconciliation_checks`) and ties every transaction to its source
row and operator actions to their audit rows (:mod:`.reconciliation_provenance`), so the
report trusts no single table; its ``stripe`` section lists what the last Stripe sync
flagged (``services/stripe_sync.py``). Everything is read in one snapshot
(``ctx.reader(snapshot=True)``), so a report taken while money moves never shows a false
mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from operator import attrgetter
from typing import Any

from ..domain.identity import new_id
from ..domain.ledger import WALLET_SCOPES
from ..domain.reconciliation import RunSource, run_summary
from .context import ServiceContext
from .reconciliation_checks import CheckResult, balance_item, run_checks
from .reconciliation_provenance import PROVENANCE_CHECKS
from .repositories import AccountBalance, ReconciliationRun
from .stripe_sync import StripeSyncSection, last_sync_flags


@dataclass(frozen=True, slots=True)
class ReconciliationReport:
    generated_at: datetime
    items: tuple[AccountBalance, ...]  # the wallets, by owner scope then owner id
    checks: tuple[CheckResult, ...]
    stripe: StripeSyncSection | None = None  # the last Stripe sync's flagged rows

    @property
    def mismatch_count(self) -> int:
        return sum(1 for line in self.items if line.delta_units != 0)

    @property
    def problem_count(self) -> int:
        """Wallets out of balance, plus failing checks, plus a flagged Stripe sync (0: ok)."""
        stripe_flagged = int(self.stripe is not None and not self.stripe.ok)
        return self.mismatch_count + sum(1 for check in self.checks if not check.ok) + stripe_flagged

    @property
    def ok(self) -> bool:
        stripe_ok = self.stripe is None or self.stripe.ok
        return self.mismatch_count == 0 and all(check.ok for check in self.checks) and stripe_ok

    def as_dict(self) -> dict[str, Any]:
        """The report as the API and ``modelfaucet reconcile --json`` print it."""
        return {
            "generated_at": self.generated_at.isoformat().replace("+00:00", "Z"),
            "summary": {
                "wallet_count": len(self.items),
                "balanced_count": len(self.items) - self.mismatch_count,
                "mismatch_count": self.mismatch_count,
            },
            "items": [balance_item(line) for line in self.items],
            "ok": self.ok,
            "checks": {check.name: check.as_dict() for check in self.checks},
            **({} if self.stripe is None else {"stripe": self.stripe.as_dict()}),
        }


def reconcile_ledger(
    ctx: ServiceContext, *, include_checks: bool = True, source: RunSource = RunSource.OTHER
) -> ReconciliationReport:
    """Reconcile in one snapshot, then store the run (:func:`record_run`)."""
    with ctx.reader(snapshot=True) as uow:
        balances = sorted(uow.reports.account_balances(), key=attrgetter("owner_scope", "owner_id"))
        checks = (*run_checks(uow, balances), *(check(uow) for check in PROVENANCE_CHECKS)) if include_checks else ()
        stripe = last_sync_flags(uow) if include_checks else None
    wallets = tuple(line for line in balances if line.owner_scope in WALLET_SCOPES)
    report = ReconciliationReport(generated_at=ctx.clock(), items=wallets, checks=checks, stripe=stripe)
    record_run(ctx, report, source)
    return report


def record_run(ctx: ServiceContext, report: ReconciliationReport, source: RunSource) -> ReconciliationRun:
    """Store the run's result in its own short unit of work (one row), so every process's
    metrics show the newest run — a ``modelfaucet reconcile`` is another process — and tell
    this process's signals once it committed."""
    stripe_flagged = report.stripe is not None and not report.stripe.ok
    run = ReconciliationRun(
        id=new_id(),
        source=source,
        finished_at=report.generated_at,
        mismatches=report.problem_count,
        summary=run_summary(
            report.mismatch_count, (c.name for c in report.checks if not c.ok), stripe_flagged=stripe_flagged
        ),
    )
    with ctx.unit_of_work() as uow:
        uow.reconciliation_runs.add(run)
        uow.after_commit(partial(ctx.signals.reconciled, run.mismatches, at=run.finished_at))
        uow.commit()
    return run


def last_run(ctx: ServiceContext) -> ReconciliationRun | None:
    with ctx.reader() as uow:
        return uow.reconciliation_runs.newest()
