"""Payout review (SPEC §9) through the HTTP API, on SQLite and PostgreSQL.

run-mock reserves, approve moves to processing, mark-paid posts mock_payout_paid and
releases the reservation; cancel / mark-failed release it; maker-checker; hold period;
every transition audited; payouts.csv. Reconciliation stays balanced after each scenario.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from modelfaucet.adapters.db import ledger
from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import audit_log, ledger_postings, ledger_transactions, payouts
from modelfaucet.config import Settings
from modelfaucet.domain.ledger import OwnerScope, SystemAccount
from modelfaucet.http.app import create_app
from modelfaucet.services.apply_adjustment import AdjustmentKind, AdjustWallet, Direction, apply_adjustment
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.run_payouts import run_mock_payouts
from modelfaucet.services.seed import SeedResult
from tests.conftest import with_settings

USD = 100_000_000
RUN_MOCK = "/v1/admin/payouts/run-mock"
WRITE_TABLES = [payouts, audit_log, ledger_postings, ledger_transactions]


def credit(ctx: ServiceContext, wallet_id: str, units: int, *, kind: str = "adjustment") -> None:
    apply_adjustment(
        ctx,
        AdjustWallet(wallet_id, AdjustmentKind(kind), Direction.CREDIT, units, "developer revenue"),
        actor=Actor("test"),
    )


def wallet_state(ctx: ServiceContext, wallet_id: str) -> tuple[int, int]:
    with ctx.db.read() as conn:
        row = ledger.get_account(conn, wallet_id)
    return int(row.balance_units), int(row.reserved_units)


def counts(ctx: ServiceContext) -> dict[str, int]:
    with ctx.db.read() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in WRITE_TABLES}


def assert_reconciled(ctx: ServiceContext) -> None:
    report = reconcile_ledger(ctx)
    assert report.ok, report.as_dict()["checks"]


def run_mock(client: TestClient, headers: dict[str, str], threshold: str | None = "1.00000000") -> Any:
    body = {} if threshold is None else {"threshold_usd": threshold}
    response = client.post(RUN_MOCK, json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def action(client: TestClient, headers: dict[str, str], payout_id: str, verb: str, **body: Any) -> Any:
    return client.post(f"/v1/admin/payouts/{payout_id}/{verb}", json=body or None, headers=headers)


@pytest.fixture
def funded(ctx: ServiceContext, seeded: SeedResult) -> SeedResult:
    """The demo developer with 5.00 of revenue."""
    credit(ctx, seeded.developer_wallet_id, 5 * USD)
    return seeded


def test_run_mock_creates_a_pending_payout_and_reserves_it_without_moving_money(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, funded: SeedResult
) -> None:
    postings_before = counts(ctx)["ledger_postings"]
    items = run_mock(client, admin_headers)
    assert len(items) == 1
    payout = items[0]
    assert payout["developer_id"] == funded.developer_id
    assert payout["wallet_id"] == funded.developer_wallet_id
    assert (payout["amount_usd"], payout["status"], payout["provider"]) == ("5.00000000", "pending", "mock")
    assert payout["provider_payout_id"] is None
    assert payout["created_by"] == "admin"
    assert wallet_state(ctx, funded.developer_wallet_id) == (5 * USD, 5 * USD)
    assert counts(ctx)["ledger_postings"] == postings_before
    assert_reconciled(ctx)


def test_run_mock_skips_developers_below_the_threshold_and_defaults_to_the_configured_one(
    database: Database, settings: Settings, admin_headers: dict[str, str], ctx: ServiceContext, funded: SeedResult
) -> None:
    high = with_settings(settings, payout_threshold_units=6 * USD)
    with TestClient(create_app(high, db=database), raise_server_exceptions=False) as client:
        assert run_mock(client, admin_headers, threshold=None) == []
        assert run_mock(client, admin_headers, threshold="5.00000001") == []
        assert len(run_mock(client, admin_headers, threshold="5")) == 1


def test_run_mock_creates_no_second_payout_while_one_is_open(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, funded: SeedResult
) -> None:
    first = run_mock(client, admin_headers)
    credit(ctx, funded.developer_wallet_id, 3 * USD)
    assert run_mock(client, admin_headers) == []
    approved = action(client, admin_headers, first[0]["id"], "approve", operator_note="ok")
    assert approved.status_code == 200
    assert run_mock(client, admin_headers) == []
    action(client, admin_headers, first[0]["id"], "mark-paid")
    again = run_mock(client, admin_headers)
    assert [p["amount_usd"] for p in again] == ["3.00000000"]
    assert_reconciled(ctx)


def test_approve_then_mark_paid_debits_the_wallet_once_and_releases_the_reservation(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, funded: SeedResult
) -> None:
    payout_id = run_mock(client, admin_headers)[0]["id"]
    approved = action(client, admin_headers, payout_id, "approve", operator_note="reviewed against ledger")
    assert approved.status_code == 200
    assert approved.json()["status"] == "processing"
    assert approved.json()["approved_by"] == "admin"
    assert approved.json()["operator_note"] == "reviewed against ledger"
    assert wallet_state(ctx, funded.developer_wallet_id) == (5 * USD, 5 * USD)

    paid = client.post(f"/v1/admin/payouts/{payout_id}/mark-paid", headers=admin_headers)
    assert paid.status_code == 200
    body = paid.json()
    assert body["status"] == "paid"
    assert body["provider_payout_id"].startswith("po_mock_")
    assert wallet_state(ctx, funded.developer_wallet_id) == (0, 0)
    with ctx.db.read() as conn:
        clearing = ledger.account_id_for(conn, OwnerScope.SYSTEM, SystemAccount.PAYOUT_CLEARING.value)
        postings = conn.execute(
            select(ledger_postings.c.account_id, ledger_postings.c.amount_units).where(
                ledger_postings.c.reason == "mock_payout_paid"
            )
        ).all()
    assert sorted(postings) == sorted([(funded.developer_wallet_id, -5 * USD), (clearing, 5 * USD)])
    assert_reconciled(ctx)


def test_mark_paid_before_approval_is_refused_with_409_and_writes_nothing(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, funded: SeedResult
) -> None:
    payout_id = run_mock(client, admin_headers)[0]["id"]
    before = counts(ctx)
    refused = client.post(f"/v1/admin/payouts/{payout_id}/mark-paid", headers=admin_headers)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "invalid_state"
    assert "approved" in error["message"]
    assert error["details"]["status"] == "pending"
    assert counts(ctx) == before
    assert wallet_state(ctx, funded.developer_wallet_id) == (5 * USD, 5 * USD)


def test_repeating_approve_or_mark_paid_answers_200_unchanged_and_writes_nothing(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, funded: SeedResult
) -> None:
    payout_id = run_mock(client, admin_headers)[0]["id"]
    first_approval = action(client, admin_headers, payout_id, "approve", operator_note="one")
    before = counts(ctx)
    again = action(client, admin_headers, payout_id, "approve", operator_note="two")
    assert again.status_code == 200
    assert again.json() == first_approval.json()
    assert counts(ctx) == before

    paid = client.post(f"/v1/admin/payouts/{payout_id}/mark-paid", headers=admin_headers)
    before = counts(ctx)
    paid_again = client.post(f"/v1/admin/payouts/{payout_id}/mark-paid", headers=admin_headers)
    assert paid_again.status_code == 200
    assert paid_again.json() == paid.json()
    assert counts(ctx) == before
    assert wallet_state(ctx, funded.developer_wallet_id) == (0, 0)
    assert_reconciled(ctx)


@pytest.mark.parametrize("approve_first", [False, True], ids=["pending", "processing"])
def test_cancel_releases_the_reservation_and_moves_no_money(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, funded: SeedResult, approve_first: bool
) -> None:
    payout_id = run_mock(client, admin_headers)[0]["id"]
    if approve_first:
        action(client, admin_headers, payout_id, "approve")
    postings_before = counts(ctx)["ledger_postings"]
    cancelled = action(client, admin_headers, payout_id, "cancel", operator_note="developer asked")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert wallet_state(ctx, funded.developer_wallet_id) == (5 * USD, 0)
    assert counts(ctx)["ledger_postings"] == postings_before
    assert action(client, admin_headers, payout_id, "mark-paid").status_code == 409
    assert action(client, admin_headers, payout_id, "cancel").status_code == 409
    assert_reconciled(ctx)


def test_mark_failed_releases_the_reservation_and_only_applies_to_processing(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, funded: SeedResult
) -> None:
    payout_id = run_mock(client, admin_headers)[0]["id"]
    assert action(client, admin_headers, payout_id, "mark-failed").status_code == 409
    action(client, admin_headers, payout_id, "approve")
    failed = action(client, admin_headers, payout_id, "mark-failed", operator_note="bank rejected")
    assert failed.status_code == 200
    assert failed.json()["status"] == "failed"
    assert wallet_state(ctx, funded.developer_wallet_id) == (5 * USD, 0)
    # A failed payout frees the developer for a new one.
    assert len(run_mock(client, admin_headers)) == 1
    assert_reconciled(ctx)


def test_every_transition_is_audited_and_shown_in_the_payout_history(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, funded: SeedResult
) -> None:
    payout_id = run_mock(client, admin_headers)[0]["id"]
    action(client, admin_headers, payout_id, "approve", operator_note="reviewed against ledger reconciliation")
    action(client, admin_headers, payout_id, "mark-paid")
    detail = client.get(f"/v1/admin/payouts/{payout_id}", headers=admin_headers)
    assert detail.status_code == 200
    history = detail.json()["history"]
    assert [(h["action"], h["before_status"], h["after_status"]) for h in history] == [
        ("payout.create", None, "pending"),
        ("payout.approve", "pending", "processing"),
        ("payout.mark_paid", "processing", "paid"),
    ]
    assert all(h["actor"] == "admin" and h["amount_usd"] == "5.00000000" for h in history)
    assert history[1]["note"] == "reviewed against ledger reconciliation"

    log = client.get("/v1/admin/audit-log", params={"resource_id": payout_id}, headers=admin_headers).json()
    assert [e["action"] for e in log["items"]] == ["payout.mark_paid", "payout.approve", "payout.create"]


def test_payouts_can_be_listed_by_status_and_unknown_ids_are_404(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, funded: SeedResult
) -> None:
    payout_id = run_mock(client, admin_headers)[0]["id"]
    pending = client.get("/v1/admin/payouts", params={"status": "pending"}, headers=admin_headers).json()
    assert [p["id"] for p in pending["items"]] == [payout_id]
    assert client.get("/v1/admin/payouts", params={"status": "paid"}, headers=admin_headers).json() == {"items": []}
    assert client.get("/v1/admin/payouts", params={"status": "bogus"}, headers=admin_headers).status_code == 400
    assert len(client.get("/v1/admin/payouts", headers=admin_headers).json()["items"]) == 1
    unknown = "00000000-0000-4000-8000-000000000000"
    assert client.get(f"/v1/admin/payouts/{unknown}", headers=admin_headers).status_code == 404
    assert action(client, admin_headers, unknown, "approve").status_code == 404
    assert client.get("/v1/admin/payouts/not-a-uuid", headers=admin_headers).status_code == 400
    assert client.get("/v1/admin/payouts", headers={"Authorization": "Bearer x"}).status_code == 401


def test_run_mock_refuses_a_bad_threshold(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, funded: SeedResult
) -> None:
    for bad in ["-1", "0", 1, "1.123456789", "abc"]:
        response = client.post(RUN_MOCK, json={"threshold_usd": bad}, headers=admin_headers)
        assert response.status_code == 400, bad
    assert counts(ctx)["payouts"] == 0


def test_run_mock_refuses_a_zero_threshold_naming_the_field_and_never_pays_below_the_minimum(
    database: Database, settings: Settings, admin_headers: dict[str, str], ctx: ServiceContext, funded: SeedResult
) -> None:
    with TestClient(create_app(settings, db=database), raise_server_exceptions=False) as client:
        zero = client.post(RUN_MOCK, json={"threshold_usd": "0"}, headers=admin_headers)
    assert zero.status_code == 400
    assert zero.json()["error"]["details"] == {"field": "threshold_usd"}
    high_minimum = with_settings(settings, payout_minimum_units=6 * USD)  # the developer has 5.00
    with TestClient(create_app(high_minimum, db=database), raise_server_exceptions=False) as client:
        assert run_mock(client, admin_headers, threshold="0.00000001") == []
    assert counts(ctx)["payouts"] == 0


# --- maker-checker ----------------------------------------------------------------------

OPERATORS = {"alice": "alice-token-0123456789abcdef-not-real", "bob": "bob-token-0123456789abcdef-not-real"}


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATORS[name]}"}


@pytest.fixture
def operators_client(database: Database, settings: Settings) -> Any:
    strict = with_settings(settings, operator_tokens=OPERATORS, payout_require_distinct_approver=True)
    with TestClient(create_app(strict, db=database), raise_server_exceptions=False) as client:
        yield client


def test_with_maker_checker_the_operator_who_ran_run_mock_cannot_approve(
    operators_client: TestClient, ctx: ServiceContext, funded: SeedResult
) -> None:
    payout = run_mock(operators_client, bearer("alice"))[0]
    assert payout["created_by"] == "alice"
    before = counts(ctx)
    refused = action(operators_client, bearer("alice"), payout["id"], "approve", operator_note="mine")
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "forbidden"
    assert "alice" in error["message"] and "another" in error["message"]
    assert counts(ctx) == before
    approved = action(operators_client, bearer("bob"), payout["id"], "approve", operator_note="checked")
    assert approved.status_code == 200
    assert approved.json()["approved_by"] == "bob"
    log = operators_client.get(
        "/v1/admin/audit-log", params={"actor": "bob", "action": "payout.approve"}, headers=bearer("alice")
    ).json()
    assert [e["resource_id"] for e in log["items"]] == [payout["id"]]


def test_without_maker_checker_the_same_operator_may_approve(
    database: Database, settings: Settings, ctx: ServiceContext, funded: SeedResult
) -> None:
    lenient = with_settings(settings, operator_tokens=OPERATORS)
    with TestClient(create_app(lenient, db=database), raise_server_exceptions=False) as client:
        payout = run_mock(client, bearer("alice"))[0]
        assert action(client, bearer("alice"), payout["id"], "approve").status_code == 200


# --- hold period ------------------------------------------------------------------------


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def test_revenue_within_the_hold_period_is_not_payable_yet(ctx: ServiceContext, seeded: SeedResult) -> None:
    clock = FakeClock(datetime(2030, 3, 1, tzinfo=UTC))
    held = ServiceContext(db=ctx.db, settings=with_settings(ctx.settings, payout_hold_days=7), clock=clock)
    credit(held, seeded.developer_wallet_id, 4 * USD)
    clock.now += timedelta(days=5)
    credit(held, seeded.developer_wallet_id, 2 * USD)
    assert run_mock_payouts(held, actor=Actor("op"), threshold_units=USD) == []  # all of it is held
    clock.now += timedelta(days=3)  # the first credit is 8 days old, the second 3
    created = run_mock_payouts(held, actor=Actor("op"), threshold_units=USD)
    assert [p.amount_units for p in created] == [4 * USD]
    assert wallet_state(ctx, seeded.developer_wallet_id) == (6 * USD, 4 * USD)
    assert_reconciled(ctx)


# --- reserved funds ---------------------------------------------------------------------


def test_a_chargeback_cannot_spend_funds_reserved_for_a_payout(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, funded: SeedResult
) -> None:
    payout_id = run_mock(client, admin_headers)[0]["id"]
    before = counts(ctx)
    chargeback = client.post(
        f"/v1/admin/wallets/{funded.developer_wallet_id}/adjustments",
        json={"kind": "chargeback", "direction": "debit", "amount_usd": "1", "reason": "card dispute"},
        headers=admin_headers,
    )
    assert chargeback.status_code == 402
    assert counts(ctx) == before
    action(client, admin_headers, payout_id, "approve")
    assert action(client, admin_headers, payout_id, "mark-paid").status_code == 200
    assert_reconciled(ctx)


# --- payouts.csv ------------------------------------------------------------------------

PAYOUTS_HEADER = (
    "created_at,updated_at,payout_id,developer_id,developer_email,amount_usd,status,provider,provider_payout_id"
)


def test_payouts_csv_lists_every_payout_with_the_seed_columns(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, funded: SeedResult
) -> None:
    payout_id = run_mock(client, admin_headers)[0]["id"]
    action(client, admin_headers, payout_id, "approve")
    paid = action(client, admin_headers, payout_id, "mark-paid").json()
    response = client.get("/v1/admin/reports/payouts.csv", headers=admin_headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == PAYOUTS_HEADER
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1
    row = rows[0]
    assert row["payout_id"] == payout_id
    assert row["developer_id"] == funded.developer_id
    assert row["developer_email"] == "dev@example.com"
    assert (row["amount_usd"], row["status"], row["provider"]) == ("5.00000000", "paid", "mock")
    assert row["provider_payout_id"] == paid["provider_payout_id"]
    assert row["created_at"].endswith("Z") and row["updated_at"] >= row["created_at"]


def test_payouts_csv_honours_from_and_to(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, funded: SeedResult
) -> None:
    run_mock(client, admin_headers)
    future = "2999-01-01T00:00:00Z"
    empty = client.get("/v1/admin/reports/payouts.csv", params={"from": future}, headers=admin_headers)
    assert empty.text.splitlines() == [PAYOUTS_HEADER]
    before = client.get("/v1/admin/reports/payouts.csv", params={"to": "2000-01-01T00:00:00Z"}, headers=admin_headers)
    assert before.text.splitlines() == [PAYOUTS_HEADER]
    everything = client.get(
        "/v1/admin/reports/payouts.csv",
        params={"from": "2000-01-01T00:00:00Z", "to": future},
        headers=admin_headers,
    )
    assert len(everything.text.splitlines()) == 2
    bad = client.get("/v1/admin/reports/payouts.csv", params={"from": "yesterday"}, headers=admin_headers)
    assert bad.status_code == 400


def test_payouts_csv_neutralises_a_formula_looking_email(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, funded: SeedResult
) -> None:
    from modelfaucet.adapters.db.tables import developers

    with ctx.db.transaction() as conn:
        conn.execute(
            developers.update().where(developers.c.id == funded.developer_id).values(email="=HYPERLINK(1)@x.io")
        )
    run_mock(client, admin_headers)
    rows = list(csv.DictReader(io.StringIO(client.get("/v1/admin/reports/payouts.csv", headers=admin_headers).text)))
    assert rows[0]["developer_email"] == "'=HYPERLINK(1)@x.io"
