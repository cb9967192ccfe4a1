"""Every account stays within ±MAX_BALANCE_UNITS; crossing it is a 400 that writes nothing.

Before the bound, ten credits of 10 billion USD pushed a wallet and its contra account
past BIGINT: SQLite silently stored REALs and reconciliation failed for good.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from modelfaucet.adapters.db.tables import accounts, adjustments, ledger_postings
from modelfaucet.domain.ledger import MAX_BALANCE_UNITS
from modelfaucet.domain.money import UNITS_PER_USD
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import SeedResult

TEN_BILLION = "10000000000.00000000"


def credit(client: TestClient, headers: dict[str, str], wallet_id: str, key: str, direction: str = "credit") -> int:
    response = client.post(
        f"/v1/admin/wallets/{wallet_id}/adjustments",
        json={"direction": direction, "amount_usd": TEN_BILLION, "reason": "limit probe", "idempotency_key": key},
        headers=headers,
    )
    return response.status_code


def counts(ctx: ServiceContext) -> tuple[int, int]:
    with ctx.db.read() as conn:
        postings = conn.execute(select(func.count()).select_from(ledger_postings)).scalar_one()
        applied = conn.execute(select(func.count()).select_from(adjustments)).scalar_one()
    return int(postings), int(applied)


def test_credits_stop_at_the_documented_bound_and_the_books_stay_whole(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    wallet = seeded.end_user_wallet_id
    fits = (MAX_BALANCE_UNITS - 10 * UNITS_PER_USD) // (10_000_000_000 * UNITS_PER_USD)
    for n in range(fits):
        assert credit(client, admin_headers, wallet, f"limit-key-{n:04d}") == 201
    before = counts(ctx)

    refused = client.post(
        f"/v1/admin/wallets/{wallet}/adjustments",
        json={"direction": "credit", "amount_usd": TEN_BILLION, "reason": "limit probe"},
        headers=admin_headers,
    )

    assert refused.status_code == 400
    body = refused.json()["error"]
    assert body["code"] == "invalid_request"
    assert "limit" in body["message"]
    assert counts(ctx) == before, "a refused credit writes nothing"
    with ctx.db.read() as conn:
        balances = [int(b) for b in conn.execute(select(accounts.c.balance_units)).scalars()]
    assert all(isinstance(b, int) and abs(b) <= MAX_BALANCE_UNITS for b in balances)
    report = reconcile_ledger(ctx)
    assert report.ok, report.as_dict()


def test_a_system_account_is_bounded_too(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    # Credits to two wallets drive the one adjustment contra account towards -MAX.
    wallets = [seeded.end_user_wallet_id, seeded.developer_wallet_id]
    statuses = [credit(client, admin_headers, wallets[n % 2], f"contra-key-{n:04d}") for n in range(10)]
    assert statuses[:9] == [201] * 9
    assert statuses[9] == 400
    assert reconcile_ledger(ctx).ok
