"""Two API processes on one PostgreSQL database, raced against each other.

Every scenario splits its concurrent requests across both ``modelfaucet serve`` processes,
so nothing held in one process's memory (the group-commit queue, a lock, a cache) can be
what keeps the money right: only the database. After each scenario: nothing doubled,
nothing overdrawn, reconciliation clean on both processes.

PostgreSQL only: SQLite is an embedded, single-host engine (one writer at a time by design).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import func, select

from modelfaucet.adapters.db.tables import (
    accounts,
    adjustments,
    holds,
    ledger_transactions,
    payouts,
    stripe_topups,
    usage_events,
)
from modelfaucet.config import Settings
from modelfaucet.domain.ledger import Reason
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.seed import SeedResult
from tests.conftest import ADMIN_TOKEN, APP_KEY_HEADERS, GATEWAY_TOKEN, LiveServer, start_live_server
from tests.integration.usage_support import balance, fund_end_user
from tests.reliability.support import LIVE_ENV, invariant_violations, signed_headers, usage_body, webhook_event

USD = 100_000_000
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GATEWAY = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
T = TypeVar("T")


@pytest.fixture
def two_servers(db_url: str, settings: Settings, seeded: SeedResult, tmp_path: Path) -> Iterator[list[LiveServer]]:
    if db_url.startswith("sqlite"):
        pytest.skip("multi-process races need PostgreSQL (SQLite is single-host, one writer at a time)")
    servers = [start_live_server(settings, tmp_path, LIVE_ENV), start_live_server(settings, tmp_path, LIVE_ENV)]
    yield servers
    for server in servers:
        server.stop()


def race(count: int, work: Callable[[int], T]) -> list[T]:
    """``work(i)`` on ``count`` threads released together."""
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        barrier.wait(timeout=30)
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def scalar(ctx: ServiceContext, stmt: Any) -> int:
    with ctx.db.read() as conn:
        return int(conn.execute(stmt).scalar_one())


def assert_clean(ctx: ServiceContext, servers: list[LiveServer]) -> None:
    assert invariant_violations(ctx) == []
    for server in servers:
        report = httpx.get(f"{server.base_url}/v1/admin/reconciliation/ledger", headers=ADMIN, timeout=30).json()
        assert report["ok"] is True and report["summary"]["mismatch_count"] == 0


def test_concurrent_debits_on_one_wallet_never_overdraw_it(
    two_servers: list[LiveServer], ctx: ServiceContext, seeded: SeedResult
) -> None:
    wallet = fund_end_user(ctx, seeded, "race-user", 10 * USD)
    adjustments_before = scalar(ctx, select(func.count()).select_from(adjustments))
    # 30 adjustment debits of 0.40 USD and 30 usage calls of ~0.39 USD: 23.7 USD asked of 10.
    usage_price = 39_000_000  # 0.39 USD retail: 1.3 × 0.30 USD upstream (600k input tokens)

    def work(index: int) -> tuple[str, int]:
        base = two_servers[index % 2].base_url
        with httpx.Client(base_url=base, timeout=30) as client:
            if index % 2 == 0:
                response = client.post(
                    f"/v1/admin/wallets/{wallet}/adjustments",
                    headers=ADMIN,
                    json={
                        "kind": "chargeback",
                        "direction": "debit",
                        "amount_usd": "0.40000000",
                        "reason": "race",
                        "idempotency_key": f"race-debit-{index:04d}",
                    },
                )
                return ("adjustment", response.status_code)
            response = client.post(
                "/v1/usage/events",
                headers=GATEWAY,
                json=usage_body(f"race-usage-{index}", "race-user", input_tokens=600_000, output_tokens=0),
            )
            return ("usage", response.status_code)

    results = race(60, work)
    counts = Counter(results)
    assert set(counts) <= {("adjustment", 201), ("adjustment", 402), ("usage", 201), ("usage", 402)}, counts
    spent = counts[("adjustment", 201)] * 40_000_000 + counts[("usage", 201)] * usage_price
    assert balance(ctx, wallet) == 10 * USD - spent >= 0
    assert balance(ctx, wallet) < usage_price or counts[("usage", 402)] == 0  # refused only when it did not fit
    assert scalar(ctx, select(func.count()).select_from(usage_events)) == counts[("usage", 201)]
    applied = scalar(ctx, select(func.count()).select_from(adjustments)) - adjustments_before
    assert applied == counts[("adjustment", 201)]
    assert_clean(ctx, two_servers)


def test_a_duplicate_webhook_storm_credits_each_top_up_once(
    two_servers: list[LiveServer], ctx: ServiceContext, seeded: SeedResult
) -> None:
    first = httpx.Client(base_url=two_servers[0].base_url, timeout=30)
    token = first.post(
        "/v1/sessions", headers=APP_KEY_HEADERS, json={"public_app_id": "app_pub_demo", "external_user_id": "storm"}
    ).json()["session_token"]
    sessions: list[tuple[str, int]] = []
    for cents in (500, 750, 1000, 1250):
        created = first.post(
            "/v1/user/stripe/checkout-sessions",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "amount_usd": f"{cents // 100}.{cents % 100:02d}000000",
                "success_url": "https://app.example/ok",
                "cancel_url": "https://app.example/cancel",
            },
        )
        assert created.status_code == 201, created.text
        sessions.append((created.json()["checkout_session_id"], cents))
    wallet = first.get("/v1/user/wallet", headers={"Authorization": f"Bearer {token}"}).json()["id"]
    first.close()

    def work(index: int) -> int:
        session_id, cents = sessions[index % len(sessions)]
        # The same event id delivered many times, plus a second, different event per session.
        event_id = f"evt_storm_{index % len(sessions)}" if index % 3 else f"evt_storm_alt_{index % len(sessions)}"
        event_type = "checkout.session.completed" if index % 5 else "checkout.session.async_payment_succeeded"
        payload = webhook_event(event_id, session_id, cents, event_type if index % 3 else "checkout.session.completed")
        base = two_servers[index % 2].base_url
        response = httpx.post(f"{base}/v1/stripe/webhook", content=payload, headers=signed_headers(payload), timeout=30)
        return response.status_code

    statuses = race(48, work)
    assert set(statuses) == {200}, Counter(statuses)
    assert balance(ctx, wallet) == sum(cents for _, cents in sessions) * 1_000_000
    credited = Reason.STRIPE_CHECKOUT_TOPUP.value
    assert scalar(ctx, select(func.count()).where(ledger_transactions.c.reason == credited)) == len(sessions)
    assert scalar(
        ctx, select(func.count()).select_from(stripe_topups).where(stripe_topups.c.status == "credited")
    ) == len(sessions)
    assert_clean(ctx, two_servers)


def test_payout_transitions_raced_across_processes_pay_at_most_once(
    two_servers: list[LiveServer], ctx: ServiceContext, seeded: SeedResult
) -> None:
    base = [server.base_url for server in two_servers]
    credit = httpx.post(
        f"{base[0]}/v1/admin/wallets/{seeded.developer_wallet_id}/adjustments",
        headers=ADMIN,
        json={"direction": "credit", "amount_usd": "5.00000000", "reason": "revenue", "idempotency_key": "dev-rev-01"},
        timeout=30,
    )
    assert credit.status_code == 201
    runs = race(
        8,
        lambda i: httpx.post(f"{base[i % 2]}/v1/admin/payouts/run-mock", headers=ADMIN, json={}, timeout=30).json(),
    )
    created = [item for run in runs for item in run["items"]]
    assert len(created) == 1, runs
    payout_id = created[0]["id"]

    approvals = race(
        8,
        lambda i: (
            httpx.post(
                f"{base[i % 2]}/v1/admin/payouts/{payout_id}/approve", headers=ADMIN, json={}, timeout=30
            ).status_code
        ),
    )
    assert set(approvals) == {200}

    def finish(index: int) -> tuple[str, int]:
        action = "mark-paid" if index % 3 else "cancel"
        response = httpx.post(f"{base[index % 2]}/v1/admin/payouts/{payout_id}/{action}", headers=ADMIN, timeout=30)
        return action, response.status_code

    outcomes = Counter(race(12, finish))
    assert set(outcomes) <= {("mark-paid", 200), ("mark-paid", 409), ("cancel", 200), ("cancel", 409)}, outcomes
    with ctx.db.read() as conn:
        status = conn.execute(select(payouts.c.status).where(payouts.c.id == payout_id)).scalar_one()
    paid_transactions = scalar(
        ctx, select(func.count()).where(ledger_transactions.c.reason == Reason.MOCK_PAYOUT_PAID.value)
    )
    assert (status, paid_transactions) in {("paid", 1), ("cancelled", 0)}
    assert balance(ctx, seeded.developer_wallet_id) == (0 if status == "paid" else 5 * USD)
    assert_clean(ctx, two_servers)


def test_idempotency_key_collisions_across_processes_apply_once(
    two_servers: list[LiveServer], ctx: ServiceContext, seeded: SeedResult
) -> None:
    wallet = seeded.end_user_wallet_id
    body = {"kind": "refund", "direction": "credit", "amount_usd": "2.50000000", "reason": "collide"}

    def work(index: int) -> tuple[int, str | None]:
        changed = dict(body, amount_usd="9.99000000") if index % 8 == 7 else body
        response = httpx.post(
            f"{two_servers[index % 2].base_url}/v1/admin/wallets/{wallet}/adjustments",
            headers={**ADMIN, "Idempotency-Key": "collide-key-0001"},
            json=changed,
            timeout=30,
        )
        return response.status_code, response.headers.get("idempotent-replayed")

    results = race(24, work)
    statuses = Counter(status for status, _ in results)
    first_time = [r for r in results if r == (201, None)]
    assert len(first_time) == 1, results  # exactly one request applied it
    assert set(statuses) <= {201, 409}
    assert scalar(ctx, select(func.count()).select_from(adjustments)) == 1
    # Either body may win the race; whichever did is applied exactly once.
    applied = scalar(ctx, select(adjustments.c.amount_units))
    assert applied in {250_000_000, 999_000_000}
    assert balance(ctx, wallet) == 10 * USD + applied
    winner = body if applied == 250_000_000 else dict(body, amount_usd="9.99000000")
    # After the dust settles the winning key and body replay byte for byte on either process.
    replays = {
        httpx.post(
            f"{server.base_url}/v1/admin/wallets/{wallet}/adjustments",
            headers={**ADMIN, "Idempotency-Key": "collide-key-0001"},
            json=winner,
            timeout=30,
        ).content
        for server in two_servers
    }
    assert len(replays) == 1
    assert_clean(ctx, two_servers)


def test_holds_and_captures_on_one_small_wallet_never_overdraw_nor_capture_twice(
    two_servers: list[LiveServer], ctx: ServiceContext, seeded: SeedResult
) -> None:
    wallet = fund_end_user(ctx, seeded, "hold-user", 1 * USD)
    # 20 holds of 0.10 USD against 1.00 USD, split across both processes: exactly 10 fit.

    def place(index: int) -> tuple[int, dict[str, Any]]:
        with httpx.Client(base_url=two_servers[index % 2].base_url, timeout=30) as client:
            response = client.post(
                "/v1/usage/holds",
                headers=GATEWAY,
                json={
                    "request_id": f"hold-call-{index}",
                    "public_app_id": "app_pub_demo",
                    "external_user_id": "hold-user",
                    "feature_key": "customer_reply",
                    "amount_usd": "0.10000000",
                },
            )
            return response.status_code, response.json()

    placed = race(20, place)
    assert Counter(status for status, _ in placed) == {201: 10, 402: 10}
    held = [(index, body["hold_id"]) for index, (status, body) in enumerate(placed) if status == 201]
    with ctx.db.read() as conn:
        reserved = conn.execute(select(accounts.c.reserved_units).where(accounts.c.id == wallet)).scalar_one()
    assert (balance(ctx, wallet), int(reserved)) == (USD, USD)

    # Each hold is captured twice at once, on different processes: by its own request id,
    # and by another event naming its hold_id. Exactly one of the two records.
    price = 6_500_000  # 0.065 USD retail: 1.3 × 0.05 USD upstream (100k input tokens)

    def capture(slot: int) -> tuple[int, int, str]:
        index, hold_id = held[slot // 2]
        by_hold_id = slot % 2 == 1
        body = usage_body(
            f"hold-call-{index}-again" if by_hold_id else f"hold-call-{index}",
            "hold-user",
            input_tokens=100_000,
            output_tokens=0,
        )
        if by_hold_id:
            body["hold_id"] = hold_id
        with httpx.Client(base_url=two_servers[slot % 2].base_url, timeout=30) as client:
            response = client.post("/v1/usage/events", headers=GATEWAY, json=body)
        return index, response.status_code, response.json().get("status", "")

    captures = race(2 * len(held), capture)
    per_hold = Counter(index for index, status, outcome in captures if (status, outcome) == (201, "recorded"))
    assert per_hold == dict.fromkeys((index for index, _ in held), 1), captures
    assert Counter((status, outcome) for _, status, outcome in captures) == {
        (201, "recorded"): len(held),
        (200, "duplicate"): len(held),
    }
    with ctx.db.read() as conn:
        reserved = conn.execute(select(accounts.c.reserved_units).where(accounts.c.id == wallet)).scalar_one()
        open_holds = conn.execute(select(func.count()).select_from(holds).where(holds.c.status == "held")).scalar_one()
    assert (int(reserved), int(open_holds)) == (0, 0)
    assert balance(ctx, wallet) == USD - len(held) * price >= 0
    assert scalar(ctx, select(func.count()).select_from(usage_events)) == len(held)
    assert_clean(ctx, two_servers)
