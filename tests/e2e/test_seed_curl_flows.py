"""The seed's curl flows, literally, against a real ``modelfaucet serve`` on a seeded database.

Adjustment/refund: the seed's refund curl (and its retry, which must not apply twice).
Payout review: run-mock → approve (operator note) → mark-paid (no body), after the demo
developer has earned revenue (an admin credit). And the seed's rule: a payout not
approved into processing is refused by mark-paid. Reconciliation stays balanced.
"""

from __future__ import annotations

import httpx

from modelfaucet.services.seed import SeedResult
from tests.conftest import ADMIN_TOKEN, LiveServer

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
JSON = {**AUTH, "Content-Type": "application/json"}


def wallet_id(server: LiveServer, owner_scope: str) -> str:
    response = httpx.get(f"{server.base_url}/v1/admin/wallets", params={"owner_scope": owner_scope}, headers=AUTH)
    assert response.status_code == 200
    [wallet] = response.json()["items"]
    return str(wallet["id"])


def assert_ledger_reconciles(server: LiveServer) -> None:
    report = httpx.get(f"{server.base_url}/v1/admin/reconciliation/ledger", headers=AUTH).json()
    assert report["summary"]["mismatch_count"] == 0
    assert report["ok"] is True, report["checks"]


def test_the_seed_refund_curl_credits_the_wallet_once(seeded: SeedResult, live_server: LiveServer) -> None:
    wallet = wallet_id(live_server, "end_user")
    assert wallet == seeded.end_user_wallet_id
    curl_body = """{
    "kind": "refund",
    "direction": "credit",
    "amount_usd": "2.50000000",
    "reason": "test-mode refund",
    "idempotency_key": "refund-demo-001"
  }"""
    url = f"{live_server.base_url}/v1/admin/wallets/{wallet}/adjustments"

    first = httpx.post(url, headers=JSON, content=curl_body)
    retry = httpx.post(url, headers=JSON, content=curl_body)

    assert first.status_code == 201, first.text
    assert first.json() == {
        "id": first.json()["id"],
        "wallet_id": wallet,
        "kind": "refund",
        "direction": "credit",
        "amount_usd": "2.50000000",
        "status": "applied",
        "reason": "test-mode refund",
        "idempotency_key": "refund-demo-001",
        "wallet_balance_usd": "12.50000000",
    }
    assert (retry.status_code, retry.content) == (201, first.content)
    detail = httpx.get(f"{live_server.base_url}/v1/admin/wallets/{wallet}", headers=AUTH).json()
    assert detail["balance_usd"] == "12.50000000"
    assert_ledger_reconciles(live_server)


def test_the_seed_payout_review_flow_run_mock_approve_mark_paid(seeded: SeedResult, live_server: LiveServer) -> None:
    base = live_server.base_url
    developer_wallet = wallet_id(live_server, "developer")
    revenue = httpx.post(
        f"{base}/v1/admin/wallets/{developer_wallet}/adjustments",
        headers=JSON,
        json={"kind": "adjustment", "direction": "credit", "amount_usd": "3.00000000", "reason": "demo revenue"},
    )
    assert revenue.status_code == 201

    run = httpx.post(f"{base}/v1/admin/payouts/run-mock", headers=JSON, content='{"threshold_usd":"1.00000000"}')
    assert run.status_code == 200, run.text
    [payout] = run.json()["items"]
    assert payout["developer_id"] == seeded.developer_id
    assert (payout["amount_usd"], payout["status"], payout["provider"]) == ("3.00000000", "pending", "mock")
    payout_id = payout["id"]

    approve = httpx.post(
        f"{base}/v1/admin/payouts/{payout_id}/approve",
        headers=JSON,
        content='{"operator_note":"reviewed against ledger reconciliation"}',
    )
    assert approve.status_code == 200, approve.text
    assert approve.json()["status"] == "processing"

    paid = httpx.post(f"{base}/v1/admin/payouts/{payout_id}/mark-paid", headers=AUTH)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid"
    assert paid.json()["provider_payout_id"].startswith("po_mock_")

    wallet = httpx.get(f"{base}/v1/admin/wallets/{developer_wallet}", headers=AUTH).json()
    assert (wallet["balance_usd"], wallet["reserved_usd"]) == ("0.00000000", "0.00000000")
    assert wallet["recent_entries"][0]["reason"] == "mock_payout_paid"
    history = httpx.get(f"{base}/v1/admin/payouts/{payout_id}", headers=AUTH).json()["history"]
    assert [h["after_status"] for h in history] == ["pending", "processing", "paid"]
    assert history[1]["note"] == "reviewed against ledger reconciliation"
    report = httpx.get(f"{base}/v1/admin/reports/payouts.csv", headers=AUTH)
    assert payout_id in report.text and "paid" in report.text
    assert_ledger_reconciles(live_server)


def test_mark_paid_without_approval_is_refused(seeded: SeedResult, live_server: LiveServer) -> None:
    base = live_server.base_url
    developer_wallet = wallet_id(live_server, "developer")
    httpx.post(
        f"{base}/v1/admin/wallets/{developer_wallet}/adjustments",
        headers=JSON,
        json={"direction": "credit", "amount_usd": "2", "reason": "demo revenue"},
    )
    [payout] = httpx.post(
        f"{base}/v1/admin/payouts/run-mock", headers=JSON, content='{"threshold_usd":"1.00000000"}'
    ).json()["items"]

    refused = httpx.post(f"{base}/v1/admin/payouts/{payout['id']}/mark-paid", headers=AUTH)

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "invalid_state"
    assert refused.headers["x-request-id"] == refused.json()["error"]["request_id"]
    wallet = httpx.get(f"{base}/v1/admin/wallets/{developer_wallet}", headers=AUTH).json()
    assert (wallet["balance_usd"], wallet["reserved_usd"]) == ("2.00000000", "2.00000000")
    assert_ledger_reconciles(live_server)
