"""Reconciliation reads one snapshot: reports taken while money moves never show a false mismatch."""

from __future__ import annotations

import threading

from modelfaucet.domain.adjustments import AdjustmentKind, Direction
from modelfaucet.services.apply_adjustment import AdjustWallet, apply_adjustment
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import SeedResult


def test_reports_during_concurrent_postings_are_always_consistent(ctx: ServiceContext, seeded: SeedResult) -> None:
    stop = threading.Event()
    posted = [0]

    def writer(target: str) -> None:
        while not stop.is_set() and posted[0] < 2_000:
            # Real operations (adjustment row, transaction, audit row): every check, the
            # provenance ones included, must see each of them whole or not at all.
            command = AdjustWallet(target, AdjustmentKind.ADJUSTMENT, Direction.CREDIT, 3, "load")
            apply_adjustment(ctx, command, actor=Actor("load"))
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
