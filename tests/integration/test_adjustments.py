"""Adjustments, refunds and chargebacks (SPEC §8) through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from modelfaucet.adapters.db import ledger
from modelfaucet.adapters.db.tables import (
    accounts,
    adjustments,
    audit_log,
    idempotency_keys,
    ledger_postings,
    ledger_transactions,
)
from modelfaucet.domain.ledger import OwnerScope, SystemAccount
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import SeedResult

WRITE_TABLES = [adjustments, audit_log, idempotency_keys, ledger_postings, ledger_transactions]


def url(wallet_id: str) -> str:
    return f"/v1/admin/wallets/{wallet_id}/adjustments"


def counts(ctx: ServiceContext) -> dict[str, int]:
    with ctx.db.read() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in WRITE_TABLES}


def balance_of(ctx: ServiceContext, account_id: str) -> tuple[int, int]:
    with ctx.db.read() as conn:
        row = ledger.get_account(conn, account_id)
    return int(row.balance_units), int(row.reserved_units)


def system_account(ctx: ServiceContext, owner: SystemAccount) -> str:
    with ctx.db.read() as conn:
        found = ledger.account_id_for(conn, OwnerScope.SYSTEM, owner.value)
    assert found is not None
    return found


def assert_reconciled(ctx: ServiceContext) -> None:
    report = reconcile_ledger(ctx)
    assert report.ok, report.as_dict()["checks"]


@pytest.mark.parametrize(
    ("kind", "direction", "contra", "reason", "wallet_delta"),
    [
        ("adjustment", "credit", SystemAccount.ADJUSTMENT_CONTRA, "wallet_adjustment", 250_000_000),
        ("adjustment", "debit", SystemAccount.ADJUSTMENT_CONTRA, "wallet_adjustment", -250_000_000),
        ("refund", "credit", SystemAccount.REFUND_CONTRA, "wallet_refund", 250_000_000),
        ("refund", "debit", SystemAccount.REFUND_CONTRA, "wallet_refund", -250_000_000),
        ("chargeback", "credit", SystemAccount.CHARGEBACK_CONTRA, "wallet_chargeback", 250_000_000),
        ("chargeback", "debit", SystemAccount.CHARGEBACK_CONTRA, "wallet_chargeback", -250_000_000),
    ],
)
def test_each_kind_and_direction_posts_a_balanced_transaction_against_its_own_contra_account(
    *,
    client: TestClient,
    admin_headers: dict[str, str],
    ctx: ServiceContext,
    seeded: SeedResult,
    kind: str,
    direction: str,
    contra: SystemAccount,
    reason: str,
    wallet_delta: int,
) -> None:
    wallet = seeded.end_user_wallet_id
    contra_id = system_account(ctx, contra)
    before_wallet, _ = balance_of(ctx, wallet)
    before_contra, _ = balance_of(ctx, contra_id)
    body = {"kind": kind, "direction": direction, "amount_usd": "2.50000000", "reason": f"test {kind}"}

    response = client.post(url(wallet), json=body, headers=admin_headers)

    assert response.status_code == 201, response.text
    out = response.json()
    assert set(out) == {
        "id", "wallet_id", "kind", "direction", "amount_usd", "status", "reason", "idempotency_key",
        "wallet_balance_usd",
    }  # fmt: skip
    assert out["wallet_id"] == wallet
    assert (out["kind"], out["direction"], out["status"]) == (kind, direction, "applied")
    assert out["amount_usd"] == "2.50000000"
    assert out["idempotency_key"] is None
    after_wallet, _ = balance_of(ctx, wallet)
    assert after_wallet == before_wallet + wallet_delta
    assert out["wallet_balance_usd"] == f"{after_wallet // 100_000_000}.{after_wallet % 100_000_000:08d}"
    assert balance_of(ctx, contra_id)[0] == before_contra - wallet_delta
    with ctx.db.read() as conn:
        postings = conn.execute(
            select(ledger_postings.c.account_id, ledger_postings.c.amount_units, ledger_postings.c.reason)
            .join(ledger_transactions, ledger_transactions.c.id == ledger_postings.c.transaction_id)
            .where(ledger_transactions.c.reference_id == out["id"])
        ).all()
    assert sorted((p.account_id, p.amount_units, p.reason) for p in postings) == sorted(
        [(wallet, wallet_delta, reason), (contra_id, -wallet_delta, reason)]
    )
    assert_reconciled(ctx)


def test_kind_defaults_to_adjustment(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    response = client.post(
        url(seeded.developer_wallet_id),
        json={"direction": "credit", "amount_usd": "1", "reason": "goodwill"},
        headers=admin_headers,
    )
    assert response.status_code == 201
    assert response.json()["kind"] == "adjustment"
    assert response.json()["wallet_balance_usd"] == "1.00000000"
    assert_reconciled(ctx)


def test_every_adjustment_writes_an_audit_row_with_actor_amount_and_note(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    response = client.post(
        url(seeded.end_user_wallet_id),
        json={"kind": "refund", "direction": "credit", "amount_usd": "0.5", "reason": "refund of ticket 7"},
        headers={**admin_headers, "x-request-id": "req-audit-1"},
    )
    adjustment_id = response.json()["id"]
    with ctx.db.read() as conn:
        row = conn.execute(select(audit_log).where(audit_log.c.resource_id == adjustment_id)).one()
    assert row.actor == "admin"
    assert row.action == "wallet.refund.credit"
    assert row.resource_type == "adjustment"
    assert row.after_status == "applied"
    assert row.amount_units == 50_000_000
    assert row.note == "refund of ticket 7"
    assert row.request_id == "req-audit-1"
    assert row.details["wallet_id"] == seeded.end_user_wallet_id


def test_a_debit_beyond_the_balance_is_refused_with_402_and_writes_nothing(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    before = counts(ctx)
    response = client.post(
        url(seeded.end_user_wallet_id),
        json={"kind": "chargeback", "direction": "debit", "amount_usd": "10.00000001", "reason": "cb"},
        headers=admin_headers,
    )
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "insufficient_balance"
    assert error["message"] == "Wallet does not have enough balance for the adjustment."
    assert error["details"]["available_usd"] == "10.00000000"
    assert counts(ctx) == before
    assert balance_of(ctx, seeded.end_user_wallet_id) == (1_000_000_000, 0)
    assert_reconciled(ctx)


def test_a_debit_of_exactly_the_available_balance_is_applied(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    response = client.post(
        url(seeded.end_user_wallet_id),
        json={"direction": "debit", "amount_usd": "10", "reason": "close"},
        headers=admin_headers,
    )
    assert response.status_code == 201
    assert response.json()["wallet_balance_usd"] == "0.00000000"
    assert_reconciled(ctx)


def test_a_debit_cannot_spend_funds_reserved_for_a_payout(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    wallet = seeded.end_user_wallet_id
    with ctx.db.transaction() as conn:
        ledger.change_reserved(conn, wallet, 800_000_000, now=ctx.clock())
    before = counts(ctx)
    refused = client.post(
        url(wallet), json={"direction": "debit", "amount_usd": "2.5", "reason": "x"}, headers=admin_headers
    )
    assert refused.status_code == 402
    assert refused.json()["error"]["details"]["available_usd"] == "2.00000000"
    assert counts(ctx) == before
    allowed = client.post(
        url(wallet), json={"direction": "debit", "amount_usd": "2", "reason": "x"}, headers=admin_headers
    )
    assert allowed.status_code == 201
    assert balance_of(ctx, wallet) == (800_000_000, 800_000_000)


BASE: dict[str, Any] = {"kind": "refund", "direction": "credit", "amount_usd": "2.50000000", "reason": "r"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount_usd": "0"}, "amount_usd"),
        ({"amount_usd": "0.00000000"}, "amount_usd"),
        ({"amount_usd": "-1"}, "amount_usd"),
        ({"amount_usd": 2.5}, "amount_usd"),
        ({"amount_usd": "2.123456789"}, "amount_usd"),
        ({"amount_usd": "01.5"}, "amount_usd"),
        ({"kind": "gift"}, "kind"),
        ({"direction": "sideways"}, "direction"),
        ({"direction": None}, "direction"),
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": "x" * 1001}, "reason"),
        ({"surprise": 1}, "surprise"),
        ({"idempotency_key": "short"}, "idempotency_key"),
        ({"idempotency_key": "has space in it"}, "idempotency_key"),
        ({"idempotency_key": "k" * 129}, "idempotency_key"),
    ],
)
def test_an_invalid_request_is_a_400_naming_the_field_and_writes_nothing(
    *,
    client: TestClient,
    admin_headers: dict[str, str],
    ctx: ServiceContext,
    seeded: SeedResult,
    change: dict[str, Any],
    field: str,
) -> None:
    before = counts(ctx)
    response = client.post(url(seeded.end_user_wallet_id), json={**BASE, **change}, headers=admin_headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in error["message"] or field in str(error["details"])
    assert counts(ctx) == before


def test_a_reason_of_1000_characters_is_accepted(
    client: TestClient, admin_headers: dict[str, str], seeded: SeedResult
) -> None:
    response = client.post(url(seeded.end_user_wallet_id), json={**BASE, "reason": "x" * 1000}, headers=admin_headers)
    assert response.status_code == 201


def test_an_unknown_wallet_is_404_and_a_malformed_id_is_400(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    before = counts(ctx)
    unknown = client.post(url("00000000-0000-4000-8000-000000000000"), json=BASE, headers=admin_headers)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    malformed = client.post(url("not-a-uuid"), json=BASE, headers=admin_headers)
    assert malformed.status_code == 400
    assert counts(ctx) == before


def test_system_accounts_cannot_be_adjusted(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    before = counts(ctx)
    contra = system_account(ctx, SystemAccount.REFUND_CONTRA)
    response = client.post(url(contra), json=BASE, headers=admin_headers)
    assert response.status_code == 400
    assert counts(ctx) == before


def test_adjustments_require_the_admin_token(client: TestClient, ctx: ServiceContext, seeded: SeedResult) -> None:
    before = counts(ctx)
    response = client.post(url(seeded.end_user_wallet_id), json=BASE, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_session"
    assert counts(ctx) == before


def test_without_a_key_each_request_is_a_separate_adjustment(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    for _ in range(2):
        assert client.post(url(seeded.end_user_wallet_id), json=BASE, headers=admin_headers).status_code == 201
    assert balance_of(ctx, seeded.end_user_wallet_id)[0] == 1_500_000_000
    with ctx.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(adjustments)).scalar_one() == 2
        total = conn.execute(select(func.sum(accounts.c.balance_units))).scalar_one()
    assert total == 0
    assert_reconciled(ctx)
