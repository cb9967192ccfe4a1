"""Reconciliation reads one snapshot: reports taken while money moves never show a false mismatch."""

from __future__ import annotations

import threading

from modelfaucet.adapters.db import ledger
from modelfaucet.domain.ledger import OwnerScope, Posting, Reason, SystemAccount, Transaction
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import SeedResult


def test_reports_during_concurrent_postings_are_always_consistent(ctx: ServiceContext, seeded: SeedResult) -> None:
    with ctx.db.read() as conn:
        contra = ledger.account_id_for(conn, OwnerScope.SYSTEM, SystemAccount.ADJUSTMENT_CONTRA.value)
    assert contra is not None
    reason = Reason.WALLET_ADJUSTMENT.value
    stop = threading.Event()
    posted = [0]

    def writer(target: str) -> None:
        while not stop.is_set() and posted[0] < 2_000:
            with ctx.db.transaction() as conn:
                ledger.post(
                    conn,
                    Transaction.of(reason, [Posting.credit(target, 3, reason), Posting.debit(contra, 3, reason)]),
                    now=ctx.clock(),
                )
            posted[0] += 1

    threads = [
        threading.Thread(target=writer, args=(target,))
        for target in (seeded.developer_wallet_id, seeded.platform_wallet_id, seeded.end_user_wallet_id)
    ]
    for thread in threads:
        thread.start()
    try:
        reports = [reconcile_ledger(ctx) for _ in range(15)]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert posted[0] > 0
    failing = [(r.mismatch_count, [c.name for c in r.checks if not c.ok]) for r in reports if not r.ok]
    assert failing == []
