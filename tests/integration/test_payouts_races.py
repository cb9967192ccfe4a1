"""Payout races, with real concurrent database connections (threads).

SQLite serialises writers (BEGIN IMMEDIATE + busy timeout); PostgreSQL runs them in
parallel, where the row locks and the partial unique index must hold the line.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from modelfaucet.adapters.db import ledger
from modelfaucet.adapters.db.tables import developers, ledger_postings, payouts
from modelfaucet.domain.identity import new_id
from modelfaucet.domain.ledger import OwnerScope
from modelfaucet.domain.money import format_usd
from modelfaucet.domain.outcomes import InsufficientBalance
from modelfaucet.domain.payouts import PayoutAction
from modelfaucet.services.apply_adjustment import AdjustmentKind, AdjustWallet, Direction, apply_adjustment
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.review_payout import ReviewPayout, review_payout
from modelfaucet.services.run_payouts import run_mock_payouts
from modelfaucet.services.seed import SeedResult

USD = 100_000_000
OPERATOR = Actor("op")
T = TypeVar("T")


def in_parallel(count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` on ``count`` threads released together by a barrier."""
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def add_developer(ctx: ServiceContext, email: str, revenue_units: int) -> str:
    now = ctx.clock()
    developer_id = new_id()
    with ctx.db.transaction() as conn:
        conn.execute(
            developers.insert().values(id=developer_id, name=email, email=email, status="active", created_at=now)
        )
        wallet = ledger.ensure_account(conn, ctx.db.insert, OwnerScope.DEVELOPER, developer_id, now=now)
    adjust(ctx, wallet, revenue_units, kind="adjustment", direction="credit")
    return wallet


def adjust(ctx: ServiceContext, wallet_id: str, units: int, *, kind: str, direction: str) -> None:
    apply_adjustment(
        ctx,
        AdjustWallet(wallet_id, AdjustmentKind(kind), Direction(direction), units, f"{kind} {direction}"),
        actor=OPERATOR,
    )


def review(ctx: ServiceContext, payout_id: str, action: PayoutAction, *, note: str | None = None) -> None:
    review_payout(ctx, ReviewPayout(payout_id, action, note), actor=Actor("checker"))


def wallet_state(ctx: ServiceContext, wallet_id: str) -> tuple[int, int]:
    with ctx.db.read() as conn:
        row = ledger.get_account(conn, wallet_id)
    return int(row.balance_units), int(row.reserved_units)


def assert_reconciled(ctx: ServiceContext) -> None:
    report = reconcile_ledger(ctx)
    assert report.ok, report.as_dict()["checks"]


def test_twenty_concurrent_run_mock_calls_open_exactly_one_payout_per_developer(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    adjust(ctx, seeded.developer_wallet_id, 5 * USD, kind="adjustment", direction="credit")
    wallets = {
        seeded.developer_wallet_id: 5 * USD,
        add_developer(ctx, "second@example.com", 3 * USD): 3 * USD,
        add_developer(ctx, "third@example.com", 2 * USD): 2 * USD,
    }

    def call(_: int) -> Any:
        response = client.post("/v1/admin/payouts/run-mock", json={"threshold_usd": "1"}, headers=admin_headers)
        assert response.status_code == 200, response.text
        return response.json()["items"]

    created = [payout for items in in_parallel(20, call) for payout in items]

    assert sorted(p["wallet_id"] for p in created) == sorted(wallets)
    with ctx.db.read() as conn:
        rows = conn.execute(select(payouts.c.account_id, payouts.c.amount_units, payouts.c.status)).all()
    assert sorted(rows) == sorted((wallet, amount, "pending") for wallet, amount in wallets.items())
    for wallet, amount in wallets.items():
        assert wallet_state(ctx, wallet) == (amount, amount)
    assert_reconciled(ctx)


def test_eight_concurrent_mark_paid_calls_debit_the_wallet_once(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    adjust(ctx, seeded.developer_wallet_id, 5 * USD, kind="adjustment", direction="credit")
    [payout] = run_mock_payouts(ctx, actor=OPERATOR, threshold_units=USD)
    review(ctx, payout.id, PayoutAction.APPROVE, note="ok")

    def call(_: int) -> tuple[int, Any]:
        response = client.post(f"/v1/admin/payouts/{payout.id}/mark-paid", headers=admin_headers)
        return response.status_code, response.json()

    results = in_parallel(8, call)

    assert {status for status, _ in results} == {200}
    assert {body["status"] for _, body in results} == {"paid"}
    assert len({body["provider_payout_id"] for _, body in results}) == 1
    with ctx.db.read() as conn:
        debits = conn.execute(
            select(func.count()).where(
                (ledger_postings.c.reason == "mock_payout_paid") & (ledger_postings.c.amount_units < 0)
            )
        ).scalar_one()
    assert debits == 1
    assert wallet_state(ctx, seeded.developer_wallet_id) == (0, 0)
    assert_reconciled(ctx)


def test_chargebacks_racing_run_mock_never_spend_the_reserved_amount(ctx: ServiceContext, seeded: SeedResult) -> None:
    wallet = seeded.developer_wallet_id
    adjust(ctx, wallet, 5 * USD, kind="adjustment", direction="credit")

    def work(index: int) -> str:
        if index == 0:
            created = run_mock_payouts(ctx, actor=OPERATOR, threshold_units=USD)
            return f"payout:{format_usd(created[0].amount_units)}" if created else "no-payout"
        try:
            adjust(ctx, wallet, USD, kind="chargeback", direction="debit")
        except InsufficientBalance:
            return "refused"
        return "charged"

    outcomes = in_parallel(9, work)

    charged = outcomes.count("charged")
    with ctx.db.read() as conn:
        open_payouts = conn.execute(select(payouts.c.id, payouts.c.amount_units)).all()
    reserved = sum(int(p.amount_units) for p in open_payouts)
    # Each dollar went exactly one way: charged back, or reserved for the payout.
    assert charged * USD + reserved == 5 * USD, outcomes
    assert charged + outcomes.count("refused") == 8
    balance, held = wallet_state(ctx, wallet)
    assert (balance, held) == (5 * USD - charged * USD, reserved)
    # Whatever won, the reserved payout can still be paid in full.
    for payout in open_payouts:
        review(ctx, payout.id, PayoutAction.APPROVE)
        review(ctx, payout.id, PayoutAction.MARK_PAID)
    assert wallet_state(ctx, wallet) == (0, 0)
    assert_reconciled(ctx)


def test_cancel_racing_mark_paid_lets_exactly_one_of_them_win(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    adjust(ctx, seeded.developer_wallet_id, 5 * USD, kind="adjustment", direction="credit")
    [payout] = run_mock_payouts(ctx, actor=OPERATOR, threshold_units=USD)
    review(ctx, payout.id, PayoutAction.APPROVE)
    verbs = ["mark-paid", "cancel"] * 4

    def call(index: int) -> tuple[str, int]:
        response = client.post(f"/v1/admin/payouts/{payout.id}/{verbs[index]}", headers=admin_headers)
        return verbs[index], response.status_code

    results = Counter(in_parallel(len(verbs), call))

    with ctx.db.read() as conn:
        final = conn.execute(select(payouts.c.status).where(payouts.c.id == payout.id)).scalar_one()
    if final == "paid":
        assert results == Counter({("mark-paid", 200): 4, ("cancel", 409): 4})
        assert wallet_state(ctx, seeded.developer_wallet_id) == (0, 0)
    else:
        assert final == "cancelled"
        assert results[("cancel", 200)] == 1
        assert results[("mark-paid", 409)] + results[("cancel", 409)] == 7
        assert wallet_state(ctx, seeded.developer_wallet_id) == (5 * USD, 0)
    assert_reconciled(ctx)


def test_run_mock_over_several_developers_racing_their_adjustments_neither_deadlocks_nor_overspends(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    adjust(ctx, seeded.developer_wallet_id, 4 * USD, kind="adjustment", direction="credit")
    wallets = [
        seeded.developer_wallet_id,
        add_developer(ctx, "b@example.com", 4 * USD),
        add_developer(ctx, "c@example.com", 4 * USD),
    ]
    jobs: list[tuple[str, str]] = [("run-mock", "")] * 4 + [
        (kind, wallet) for wallet in wallets for kind in ("chargeback", "refund")
    ]

    def work(index: int) -> str:
        job, wallet = jobs[index]
        if job == "run-mock":
            run_mock_payouts(ctx, actor=OPERATOR, threshold_units=USD)
            return "ran"
        direction = "debit" if job == "chargeback" else "credit"
        try:
            adjust(ctx, wallet, USD, kind=job, direction=direction)
        except InsufficientBalance:
            return "refused"
        return "applied"

    outcomes = in_parallel(len(jobs), work)

    assert outcomes.count("ran") == 4
    with ctx.db.read() as conn:
        per_wallet = Counter(conn.execute(select(payouts.c.account_id)).scalars())
    assert all(count <= 1 for count in per_wallet.values())
    for wallet in wallets:
        balance, reserved = wallet_state(ctx, wallet)
        assert 0 <= reserved <= balance
    assert_reconciled(ctx)
