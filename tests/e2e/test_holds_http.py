"""Holds over HTTP (SPEC §18): hold → call → capture, void, expiry, shortfall, batches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelfaucet.adapters.db.database import Database
from modelfaucet.config import Settings
from modelfaucet.domain.ledger import OwnerScope, SystemAccount
from modelfaucet.http.app import create_app
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.holds import expire_due_holds
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import SeedResult

from .test_usage_http import body as event

HOLDS = "/v1/usage/holds"
EVENTS = "/v1/usage/events"


def hold(request_id: str, amount_usd: str = "1.00000000", **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "request_id": request_id,
        "public_app_id": "app_pub_demo",
        "external_user_id": "demo-user-1",
        "feature_key": "customer_reply",
        "amount_usd": amount_usd,
    }
    values.update(changes)
    return values


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(database: Database, settings: Settings, clock: Clock) -> Iterator[TestClient]:
    app = create_app(settings, db=database, clock=clock, hold_sweep_seconds=3600)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def wallet(api: TestClient, admin_headers: dict[str, str], seeded: SeedResult) -> dict[str, Any]:
    found = api.get(
        "/v1/admin/wallets",
        params={"owner_scope": "end_user"},
        headers=admin_headers,
    ).json()["items"]
    [wallet_id] = [item["id"] for item in found]
    detail: dict[str, Any] = api.get(f"/v1/admin/wallets/{wallet_id}", headers=admin_headers).json()
    return detail


def assert_reconciled(ctx: ServiceContext) -> None:
    report = reconcile_ledger(ctx)
    assert report.ok, report.as_dict()["checks"]


def test_a_hold_reserves_and_the_event_with_its_request_id_captures_it(
    api: TestClient,
    gateway_headers: dict[str, str],
    admin_headers: dict[str, str],
    ctx: ServiceContext,
    seeded: SeedResult,
) -> None:
    placed = api.post(HOLDS, json=hold("call-1"), headers=gateway_headers)
    assert placed.status_code == 201, placed.text
    data = placed.json()
    assert data["status"] == "held"
    assert data["amount_usd"] == "1.00000000"
    assert data["available_usd"] == "9.00000000"
    assert data["expires_at"] == "2026-11-24T12:05:00Z"
    shown = wallet(api, admin_headers, seeded)
    assert shown["reserved_usd"] == "1.00000000"
    assert [h["hold_id"] for h in shown["open_holds"]] == [data["hold_id"]]
    assert_reconciled(ctx)

    captured = api.post(EVENTS, json=event("call-1"), headers=gateway_headers)
    assert captured.status_code == 201, captured.text
    assert captured.json()["end_user_balance_usd"] == "9.99863500"
    shown = wallet(api, admin_headers, seeded)
    assert shown["reserved_usd"] == "0.00000000"
    assert shown["available_usd"] == "9.99863500"
    assert shown["open_holds"] == []
    assert_reconciled(ctx)


def test_the_same_hold_again_is_200_and_a_changed_body_409(
    api: TestClient, gateway_headers: dict[str, str], seeded: SeedResult
) -> None:
    first = api.post(HOLDS, json=hold("h-same"), headers=gateway_headers).json()
    again = api.post(HOLDS, json=hold("h-same"), headers=gateway_headers)
    assert again.status_code == 200
    assert again.json()["hold_id"] == first["hold_id"]
    assert again.json()["available_usd"] == "9.00000000"  # reserved once
    conflict = api.post(HOLDS, json=hold("h-same", "2"), headers=gateway_headers)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_conflict"


def test_a_hold_above_the_available_balance_is_402_and_reserves_nothing(
    api: TestClient, gateway_headers: dict[str, str], admin_headers: dict[str, str], seeded: SeedResult
) -> None:
    assert api.post(HOLDS, json=hold("a", "6"), headers=gateway_headers).status_code == 201
    refused = api.post(HOLDS, json=hold("b", "5"), headers=gateway_headers)
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "insufficient_balance"
    assert wallet(api, admin_headers, seeded)["reserved_usd"] == "6.00000000"
    # Nor can a plain event spend what a hold reserved.
    spend = api.post(EVENTS, json=event("spend", upstream_cost_usd="4"), headers=gateway_headers)
    assert spend.status_code == 402


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"amount_usd": "0"}, 400),
        ({"amount_usd": 1}, 400),
        ({"ttl_seconds": 3601}, 400),
        ({"ttl_seconds": 0}, 400),
        ({"public_app_id": "app_nope"}, 404),
        ({"feature_key": "nope"}, 404),
        ({"external_user_id": "never-seen"}, 402),
    ],
)
def test_a_bad_hold_is_refused_and_reserves_nothing(
    *,
    api: TestClient,
    gateway_headers: dict[str, str],
    admin_headers: dict[str, str],
    seeded: SeedResult,
    changes: dict[str, Any],
    status: int,
) -> None:
    response = api.post(HOLDS, json=hold("bad", **changes), headers=gateway_headers)
    assert response.status_code == status, response.text
    assert wallet(api, admin_headers, seeded)["reserved_usd"] == "0.00000000"


def test_holds_need_the_gateway_token(api: TestClient, admin_headers: dict[str, str], seeded: SeedResult) -> None:
    assert api.post(HOLDS, json=hold("x")).status_code == 401
    assert api.post(HOLDS, json=hold("x"), headers=admin_headers).status_code == 401


def test_a_price_above_the_hold_and_the_balance_posts_the_shortfall_to_uncollected_usage(
    api: TestClient,
    gateway_headers: dict[str, str],
    admin_headers: dict[str, str],
    ctx: ServiceContext,
    seeded: SeedResult,
) -> None:
    assert api.post(HOLDS, json=hold("long", "10"), headers=gateway_headers).status_code == 201
    # The call ran long: it costs more than the whole wallet (10.00).
    captured = api.post(EVENTS, json=event("long", upstream_cost_usd="12"), headers=gateway_headers)
    assert captured.status_code == 201, captured.text
    retail = captured.json()["retail_price_usd"]
    assert captured.json()["end_user_balance_usd"] == "0.00000000"
    shown = wallet(api, admin_headers, seeded)
    assert (shown["balance_usd"], shown["reserved_usd"]) == ("0.00000000", "0.00000000")
    with ctx.reader() as uow:
        uncollected_id = uow.ledger.id_for(OwnerScope.SYSTEM, SystemAccount.UNCOLLECTED_USAGE.value)
        assert uncollected_id is not None
        uncollected = uow.ledger.require(uncollected_id).balance_units
    assert uncollected == -(int(retail.replace(".", "")) - 10 * 10**8)
    assert_reconciled(ctx)


def test_capturing_twice_is_a_duplicate(
    api: TestClient, gateway_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    hold_id = api.post(HOLDS, json=hold("cap"), headers=gateway_headers).json()["hold_id"]
    first = api.post(EVENTS, json=event("ev-1", hold_id=hold_id), headers=gateway_headers)
    assert first.status_code == 201, first.text
    second = api.post(EVENTS, json=event("ev-2", hold_id=hold_id), headers=gateway_headers)
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "duplicate"
    assert second.json()["usage_event_id"] == first.json()["usage_event_id"]
    batch = api.post(
        EVENTS,
        json={"events": [event("ev-3", hold_id=hold_id), event("ev-1", hold_id=hold_id)]},
        headers=gateway_headers,
    ).json()
    assert [item["status"] for item in batch["items"]] == ["duplicate", "duplicate"]
    assert_reconciled(ctx)


def test_an_unknown_hold_id_is_404_for_that_event(
    api: TestClient, gateway_headers: dict[str, str], seeded: SeedResult
) -> None:
    response = api.post(
        EVENTS, json=event("ev-x", hold_id="00000000-0000-4000-8000-000000000000"), headers=gateway_headers
    )
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Hold was not found."


def test_void_releases_the_hold_and_an_event_then_posts_without_it(
    api: TestClient,
    gateway_headers: dict[str, str],
    admin_headers: dict[str, str],
    ctx: ServiceContext,
    seeded: SeedResult,
) -> None:
    hold_id = api.post(HOLDS, json=hold("v", "9"), headers=gateway_headers).json()["hold_id"]
    voided = api.post(f"{HOLDS}/{hold_id}/void", headers=gateway_headers)
    assert voided.status_code == 200, voided.text
    assert voided.json()["status"] == "released"
    assert api.post(f"{HOLDS}/{hold_id}/void", headers=gateway_headers).json()["status"] == "released"
    assert wallet(api, admin_headers, seeded)["reserved_usd"] == "0.00000000"
    assert api.post(EVENTS, json=event("v"), headers=gateway_headers).status_code == 201
    unknown = api.post(f"{HOLDS}/00000000-0000-4000-8000-000000000000/void", headers=gateway_headers)
    assert unknown.status_code == 404
    assert_reconciled(ctx)


def test_a_captured_hold_cannot_be_voided(api: TestClient, gateway_headers: dict[str, str], seeded: SeedResult) -> None:
    hold_id = api.post(HOLDS, json=hold("cv"), headers=gateway_headers).json()["hold_id"]
    api.post(EVENTS, json=event("cv"), headers=gateway_headers)
    refused = api.post(f"{HOLDS}/{hold_id}/void", headers=gateway_headers)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "invalid_state"


def test_an_expired_hold_is_released_by_the_next_write_and_cannot_be_captured(
    *,
    api: TestClient,
    gateway_headers: dict[str, str],
    admin_headers: dict[str, str],
    ctx: ServiceContext,
    seeded: SeedResult,
    clock: Clock,
) -> None:
    assert api.post(HOLDS, json=hold("exp", "9.99", ttl_seconds=60), headers=gateway_headers).status_code == 201
    clock.now += timedelta(seconds=61)
    assert wallet(api, admin_headers, seeded)["reserved_usd"] == "9.99000000"  # nothing wrote yet
    # The next write to the wallet (a new hold) expires it first, so it has room.
    assert api.post(HOLDS, json=hold("next", "5"), headers=gateway_headers).status_code == 201
    assert wallet(api, admin_headers, seeded)["reserved_usd"] == "5.00000000"
    # The expired hold's event posts as an event without a hold.
    posted = api.post(EVENTS, json=event("exp"), headers=gateway_headers)
    assert posted.status_code == 201
    assert wallet(api, admin_headers, seeded)["reserved_usd"] == "5.00000000"
    assert_reconciled(ctx)


def test_the_sweep_expires_overdue_holds(
    *,
    api: TestClient,
    gateway_headers: dict[str, str],
    admin_headers: dict[str, str],
    ctx: ServiceContext,
    seeded: SeedResult,
    clock: Clock,
) -> None:
    api.post(HOLDS, json=hold("s1", "1", ttl_seconds=10), headers=gateway_headers)
    api.post(HOLDS, json=hold("s2", "2", ttl_seconds=100), headers=gateway_headers)
    clock.now += timedelta(seconds=11)
    swept = ServiceContext(db=ctx.db, settings=ctx.settings, clock=clock)
    assert expire_due_holds(swept) == 1 * 10**8
    assert expire_due_holds(swept) == 0
    assert wallet(api, admin_headers, seeded)["reserved_usd"] == "2.00000000"
    assert_reconciled(ctx)


def test_a_batch_of_holds_answers_one_result_per_hold(
    api: TestClient, gateway_headers: dict[str, str], admin_headers: dict[str, str], seeded: SeedResult
) -> None:
    api.post(HOLDS, json=hold("seen", "1"), headers=gateway_headers)
    holds = [hold("b1", "3"), hold("seen", "1"), hold("b2", "7"), {"request_id": "bad"}, hold("b1", "3")]
    response = api.post(HOLDS, json={"holds": holds}, headers=gateway_headers)
    assert response.status_code == 200, response.text
    data = response.json()
    assert [item["status"] for item in data["items"]] == ["held", "duplicate", "rejected", "rejected", "duplicate"]
    assert data["items"][2]["error"]["status"] == 402
    assert data["items"][4]["result"]["hold_id"] == data["items"][0]["result"]["hold_id"]
    assert data["summary"] == {"held": 1, "duplicate": 2, "rejected": 2}
    assert wallet(api, admin_headers, seeded)["reserved_usd"] == "4.00000000"


# --- receipts of captures (SPEC §18) ---------------------------------------------------------


def test_the_receipt_names_the_captured_hold_and_the_uncollected_part(
    api: TestClient, gateway_headers: dict[str, str], seeded: SeedResult
) -> None:
    hold_id = api.post(HOLDS, json=hold("long", "10"), headers=gateway_headers).json()["hold_id"]
    captured = api.post(EVENTS, json=event("long", upstream_cost_usd="12"), headers=gateway_headers)
    assert captured.status_code == 201, captured.text
    receipt = captured.json()
    assert receipt["hold_id"] == hold_id
    retail_units = int(receipt["retail_price_usd"].replace(".", ""))
    # The wallet paid its 10.00, the rest of the price was posted to uncollected_usage.
    assert int(receipt["uncollected_usd"].replace(".", "")) == retail_units - 10 * 10**8
    # A duplicate report answers the same receipt, hold and shortfall included.
    again = api.post(EVENTS, json=event("long", upstream_cost_usd="12"), headers=gateway_headers)
    assert again.status_code == 200
    assert {**again.json(), "status": "recorded"} == receipt


def test_an_event_without_a_hold_has_no_hold_id_and_nothing_uncollected(
    api: TestClient, gateway_headers: dict[str, str], seeded: SeedResult
) -> None:
    plain = api.post(EVENTS, json=event("plain"), headers=gateway_headers).json()
    assert (plain["hold_id"], plain["uncollected_usd"]) == (None, "0.00000000")
    covered_id = api.post(HOLDS, json=hold("covered", "5"), headers=gateway_headers).json()["hold_id"]
    covered = api.post(EVENTS, json={"events": [event("covered")]}, headers=gateway_headers).json()
    result = covered["items"][0]["result"]
    assert (result["hold_id"], result["uncollected_usd"]) == (covered_id, "0.00000000")


# --- lazy expiry on every write that touches the wallet (SPEC §18) ---------------------------


def test_an_admin_debit_first_expires_the_wallets_overdue_holds(
    *,
    api: TestClient,
    gateway_headers: dict[str, str],
    admin_headers: dict[str, str],
    ctx: ServiceContext,
    seeded: SeedResult,
    clock: Clock,
) -> None:
    assert api.post(HOLDS, json=hold("stale", "9", ttl_seconds=60), headers=gateway_headers).status_code == 201
    clock.now += timedelta(seconds=61)
    debit = {"kind": "adjustment", "direction": "debit", "amount_usd": "8.00000000", "reason": "lazy expiry"}
    url = f"/v1/admin/wallets/{seeded.end_user_wallet_id}/adjustments"
    # Without the expiry the overdue 9.00 would still be reserved and only 1.00 available.
    done = api.post(url, json=debit, headers={**admin_headers, "Idempotency-Key": "lazy-expiry-1"})
    assert done.status_code in (200, 201), done.text
    shown = wallet(api, admin_headers, seeded)
    assert (shown["balance_usd"], shown["reserved_usd"]) == ("2.00000000", "0.00000000")
    with ctx.reader() as uow:
        assert [h.status.value for h in uow.holds.by_request_ids(["stale"]).values()] == ["expired"]
    assert_reconciled(ctx)


def test_a_void_of_an_overdue_hold_is_refused_and_the_hold_expires(
    *, api: TestClient, gateway_headers: dict[str, str], admin_headers: dict[str, str], seeded: SeedResult, clock: Clock
) -> None:
    hold_id = api.post(HOLDS, json=hold("late", "3", ttl_seconds=60), headers=gateway_headers).json()["hold_id"]
    clock.now += timedelta(seconds=60)
    refused = api.post(f"{HOLDS}/{hold_id}/void", headers=gateway_headers)
    assert refused.status_code == 409
    assert refused.json()["error"]["details"]["status"] == "expired"
    assert wallet(api, admin_headers, seeded)["reserved_usd"] == "0.00000000"
