"""POST /v1/admin/stripe/sync with the real ``stripe`` library pointed at a local fake of
Stripe's Checkout Sessions API (SPEC §20), on SQLite and PostgreSQL.

Sessions are opened through the API (so each has its pending top-up), paid in the fake
with no webhook, and found by the sync through the library's list calls — every page of
them, as auto-paging walks ``starting_after``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from modelfaucet.adapters.db.database import Database
from modelfaucet.config import Settings
from modelfaucet.domain.stripe_sync import SyncOutcome
from modelfaucet.http.app import create_app
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.seed import SeedResult
from tests.conftest import APP_KEY_HEADERS, with_settings
from tests.fakes.stripe_http import FakeStripeApi, running_fake_stripe
from tests.stripe_support import balance_of, sync_counts

FAKE_KEY = "sk_test_fake_sync_0123456789_not_a_secret"
SYNC = "/v1/admin/stripe/sync"
TEN_USD = 1_000_000_000


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripeApi]:
    with running_fake_stripe() as fake:
        yield fake


@pytest.fixture
def api(database: Database, settings: Settings, fake_stripe: FakeStripeApi) -> Iterator[TestClient]:
    configured = with_settings(settings, stripe_secret_key=FAKE_KEY, stripe_api_base=fake_stripe.base_url)
    with TestClient(create_app(configured, db=database), raise_server_exceptions=False) as client:
        yield client


def open_sessions(api: TestClient, amounts_usd: list[str]) -> list[str]:
    token = api.post(
        "/v1/sessions",
        headers=APP_KEY_HEADERS,
        json={"public_app_id": "app_pub_demo", "external_user_id": "demo-user-1"},
    ).json()["session_token"]
    ids = []
    for amount in amounts_usd:
        response = api.post(
            "/v1/user/stripe/checkout-sessions",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "amount_usd": amount,
                "success_url": "https://app.example/ok",
                "cancel_url": "https://app.example/no",
            },
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["checkout_session_id"])
    return ids


def test_the_sync_walks_every_page_and_credits_each_lost_webhook_once(
    api: TestClient, fake_stripe: FakeStripeApi, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    sessions = open_sessions(api, ["1.00", "2.00", "3.00", "4.00", "5.00"])
    for paid in sessions[:3]:
        fake_stripe.pay(paid)

    response = api.post(SYNC, json={}, headers=admin_headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is False
    assert body["summary"] == {outcome.value: 0 for outcome in SyncOutcome} | {"credited_now": 3, "ok": 2}
    by_session = {item["checkout_session_id"]: item for item in body["items"]}
    assert set(by_session) == set(sessions)
    assert by_session[sessions[0]] == {
        "checkout_session_id": sessions[0],
        "topup_id": by_session[sessions[0]]["topup_id"],
        "outcome": "credited_now",
        "stripe_status": "paid",
        "local_status": "credited",
        "amount_usd": "1.00000000",
    }
    assert by_session[sessions[4]]["stripe_status"] == "open"
    list_calls = fake_stripe.list_calls()
    assert len(list_calls) == 3, "five sessions in pages of two"
    assert [call.get("starting_after") is None for call in list_calls] == [True, False, False]
    assert all("created[gte]" in call for call in list_calls)
    assert balance_of(ctx, seeded.end_user_wallet_id) == TEN_USD + 600_000_000

    again = api.post(SYNC, headers=admin_headers).json()
    assert again["summary"]["ok"] == 5 and again["summary"]["credited_now"] == 0
    assert balance_of(ctx, seeded.end_user_wallet_id) == TEN_USD + 600_000_000


def test_a_dry_run_answers_the_same_rows_and_writes_nothing(
    api: TestClient, fake_stripe: FakeStripeApi, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    [session] = open_sessions(api, ["5.00"])
    fake_stripe.pay(session)
    before = sync_counts(ctx)

    body = api.post(SYNC, json={"dry_run": True}, headers=admin_headers).json()

    assert body["dry_run"] is True
    assert [(i["outcome"], i["local_status"]) for i in body["items"]] == [("credited_now", "pending")]
    assert sync_counts(ctx) == before


def test_a_session_stripe_did_not_list_is_read_by_id(
    api: TestClient, fake_stripe: FakeStripeApi, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    [session] = open_sessions(api, ["5.00"])
    fake_stripe.pay(session)
    fake_stripe.sessions[session]["created"] -= 8 * 24 * 3600  # Stripe dates it before the window

    body = api.post(SYNC, json={}, headers=admin_headers).json()

    assert [(i["checkout_session_id"], i["outcome"]) for i in body["items"]] == [(session, "credited_now")]
    assert ("GET", f"/v1/checkout/sessions/{session}") in [(m, p) for m, p, _ in fake_stripe.requests]
    assert balance_of(ctx, seeded.end_user_wallet_id) == TEN_USD + 500_000_000


def test_stripe_failing_is_a_502_and_the_sync_writes_nothing(
    api: TestClient, fake_stripe: FakeStripeApi, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    [session] = open_sessions(api, ["5.00"])
    fake_stripe.pay(session)
    fake_stripe.list_status = 500
    before = sync_counts(ctx)

    response = api.post(SYNC, json={}, headers=admin_headers)

    assert response.status_code == 502
    error = response.json()["error"]
    assert (error["code"], error["details"]["upstream_status"]) == ("upstream_error", 500)
    assert FAKE_KEY not in response.text
    assert sync_counts(ctx) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [({"since": "yesterday"}, "since"), ({"dry_run": "maybe"}, "dry_run"), ({"window": "7d"}, "window")],
)
def test_a_malformed_sync_request_is_a_400_naming_the_field(
    api: TestClient, admin_headers: dict[str, str], seeded: SeedResult, body: dict[str, str], field: str
) -> None:
    response = api.post(SYNC, json=body, headers=admin_headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert field in response.text


def test_the_sync_needs_the_admin_token(api: TestClient, seeded: SeedResult) -> None:
    response = api.post(SYNC, json={})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_session"
