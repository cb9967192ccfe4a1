"""POST /v1/usage/events, GET /v1/apps/{id}/usage and the catalog admin endpoints over HTTP."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from modelfaucet.adapters.db.tables import audit_log
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.seed import SeedResult

from ..integration.usage_support import posting_count, usage_count

URL = "/v1/usage/events"


def body(request_id: str, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "request_id": request_id,
        "public_app_id": "app_pub_demo",
        "external_user_id": "demo-user-1",
        "feature_key": "customer_reply",
        "route_mode": "platform",
        "provider": "mock",
        "model": "mock-small",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cached_tokens": 0,
    }
    values.update(changes)
    return values


def test_one_event_is_rated_and_answers_201_with_the_new_balance(
    client: TestClient, gateway_headers: dict[str, str], seeded: SeedResult
) -> None:
    response = client.post(URL, json=body("r1"), headers=gateway_headers)
    assert response.status_code == 201, response.text
    data = response.json()
    assert data["status"] == "recorded"
    assert data["retail_price_usd"] == "0.00136500"
    assert data["upstream_cost_usd"] == "0.00105000"
    assert data["channel_revenue_usd"] == "0.00012600"
    assert data["platform_revenue_usd"] == "0.00018900"
    assert data["end_user_balance_usd"] == "9.99863500"


def test_a_duplicate_answers_200_with_the_original_result_and_a_changed_body_409(
    client: TestClient, gateway_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    first = client.post(URL, json=body("r2"), headers=gateway_headers).json()
    again = client.post(URL, json=body("r2"), headers=gateway_headers)
    assert again.status_code == 200
    assert {**again.json(), "status": "recorded"} == first
    conflict = client.post(URL, json=body("r2", input_tokens=1), headers=gateway_headers)
    assert conflict.status_code == 409
    error = conflict.json()["error"]
    assert error["code"] == "idempotency_conflict"
    assert error["details"]["differing_fields"] == ["input_tokens"]
    assert posting_count(ctx) == 4


def test_an_end_user_who_cannot_pay_gets_402_and_nothing_is_posted(
    client: TestClient, gateway_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    response = client.post(URL, json=body("big", upstream_cost_usd="100"), headers=gateway_headers)
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_balance"
    assert usage_count(ctx) == 0
    assert posting_count(ctx) == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"input_tokens": "12"}, "input_tokens"),
        ({"input_tokens": -1}, "input_tokens"),
        ({"route_mode": "free"}, "route_mode"),
        ({"upstream_cost_usd": 0.5}, "upstream_cost_usd"),
        ({"request_id": ""}, "request_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_an_invalid_event_is_400_naming_the_field_and_writes_nothing(
    *,
    client: TestClient,
    gateway_headers: dict[str, str],
    ctx: ServiceContext,
    seeded: SeedResult,
    changes: dict[str, Any],
    field: str,
) -> None:
    response = client.post(URL, json={**body("bad"), **changes}, headers=gateway_headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"]["field"] == field or field in error["message"]
    assert usage_count(ctx) == 0


def test_usage_needs_the_gateway_token(client: TestClient, admin_headers: dict[str, str], seeded: SeedResult) -> None:
    assert client.post(URL, json=body("x")).status_code == 401
    assert client.post(URL, json=body("x"), headers=admin_headers).status_code == 401


def test_a_mixed_batch_answers_200_with_one_result_per_event(
    client: TestClient, gateway_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    client.post(URL, json=body("seen"), headers=gateway_headers)
    events = [
        body("b-ok"),
        body("seen"),
        body("b-poor", upstream_cost_usd="50"),
        {"request_id": "b-invalid", "input_tokens": "many"},
        body("b-ok-2", route_mode="byok"),
    ]
    response = client.post(URL, json={"events": events}, headers=gateway_headers)
    assert response.status_code == 200, response.text
    data = response.json()
    assert [item["status"] for item in data["items"]] == ["recorded", "duplicate", "rejected", "rejected", "recorded"]
    assert data["summary"] == {"recorded": 2, "duplicate": 1, "rejected": 2}
    assert data["items"][2]["error"]["code"] == "insufficient_balance"
    assert data["items"][2]["error"]["status"] == 402
    assert data["items"][3]["error"]["code"] == "invalid_request"
    assert data["items"][3]["request_id"] == "b-invalid"
    assert usage_count(ctx) == 3  # "seen", "b-ok", "b-ok-2"


@pytest.mark.parametrize("events", [[], "nope", [body(f"e{i}") for i in range(1001)]])
def test_a_batch_must_hold_1_to_1000_events(
    client: TestClient, gateway_headers: dict[str, str], seeded: SeedResult, events: object
) -> None:
    response = client.post(URL, json={"events": events}, headers=gateway_headers)
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "events"


def test_20_concurrent_http_reports_of_one_request_id_post_once(
    client: TestClient, gateway_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(
            pool.map(lambda _: client.post(URL, json=body("hot"), headers=gateway_headers).status_code, range(20))
        )
    assert sorted(statuses) == [200] * 19 + [201]
    assert usage_count(ctx) == 1
    assert posting_count(ctx) == 4


def test_the_app_usage_lists_recent_events_for_an_admin(
    client: TestClient, gateway_headers: dict[str, str], admin_headers: dict[str, str], seeded: SeedResult
) -> None:
    for i in range(3):
        client.post(URL, json=body(f"u{i}"), headers=gateway_headers)
    response = client.get("/v1/apps/app_pub_demo/usage?limit=2", headers=admin_headers)
    assert response.status_code == 200
    items = response.json()["items"]
    assert len(items) == 2
    assert items[0]["retail_price_usd"] == "0.00136500"
    assert client.get("/v1/apps/app_pub_demo/usage", headers=gateway_headers).status_code == 401
    assert client.get("/v1/apps/nope/usage", headers=admin_headers).status_code == 404


def test_operators_build_the_catalog_and_every_write_is_audited(
    client: TestClient,
    gateway_headers: dict[str, str],
    admin_headers: dict[str, str],
    ctx: ServiceContext,
    seeded: SeedResult,
) -> None:
    dev = client.post("/v1/admin/developers", json={"name": "Ada", "email": "ada@example.com"}, headers=admin_headers)
    assert dev.status_code == 201, dev.text
    developer_id = dev.json()["id"]
    assert dev.json()["wallet_id"]
    again = client.post("/v1/admin/developers", json={"name": "Ada", "email": "ada@example.com"}, headers=admin_headers)
    assert again.status_code == 409
    app = client.post(
        "/v1/admin/apps",
        json={
            "developer_id": developer_id,
            "public_app_id": "app_ada",
            "name": "Ada",
            "default_revenue_share_bps": 5000,
        },
        headers=admin_headers,
    )
    assert app.status_code == 201, app.text
    assert app.json()["default_markup_percent"] == "30"
    feature = client.put(
        "/v1/admin/apps/app_ada/features/summarise",
        json={"display_name": "Summarise", "pricing": {"markup_percent": "12.5", "explicit_gateway_fee_usd": "0.001"}},
        headers=admin_headers,
    )
    assert feature.status_code == 200, feature.text
    assert feature.json()["pricing"] == {
        "markup_percent": "12.5",
        "channel_share_bps": None,
        "explicit_gateway_fee_usd": "0.00100000",
    }
    price = client.put(
        "/v1/admin/model-prices/acme/acme-1",
        json={"input_per_1m_usd": "1", "output_per_1m_usd": "2", "cached_per_1m_usd": "0.1"},
        headers=admin_headers,
    )
    assert price.status_code == 200, price.text
    assert price.json()["version"] == 1
    repriced = client.put(
        "/v1/admin/model-prices/acme/acme-1",
        json={"input_per_1m_usd": "2", "output_per_1m_usd": "2"},
        headers=admin_headers,
    )
    assert repriced.json()["version"] == 2
    assert repriced.json()["cached_per_1m_usd"] == "0.00000000"
    assert feature.json()["pricing_version"] == 1
    # A new end user has no balance: a priced call is refused, a byok call with the fee too.
    call = body("ada-1", public_app_id="app_ada", feature_key="summarise", provider="acme", model="acme-1")
    assert client.post(URL, json=call, headers=gateway_headers).status_code == 402
    with ctx.db.read() as conn:
        actions = [row.action for row in conn.execute(select(audit_log).where(audit_log.c.actor == "admin")).all()]
    assert {"developer.create", "app.create", "feature.put", "model_price.put"} <= set(actions)


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/v1/admin/apps/app_pub_demo/features/f1", {"display_name": "x", "pricing": {"markup_percent": 30}}),
        ("/v1/admin/apps/app_pub_demo/features/f1", {"display_name": "x", "pricing": {"markup_percent": "-3"}}),
        ("/v1/admin/apps/app_pub_demo/features/f1", {"display_name": "x", "pricing": {"channel_share_bps": 10001}}),
        (
            "/v1/admin/apps/app_pub_demo/features/f1",
            {"display_name": "x", "pricing": {"explicit_gateway_fee_usd": "-1"}},
        ),
        ("/v1/admin/model-prices/mock/m", {"input_per_1m_usd": "1", "output_per_1m_usd": 2}),
    ],
)
def test_bad_pricing_is_400_and_writes_nothing(
    *,
    client: TestClient,
    admin_headers: dict[str, str],
    ctx: ServiceContext,
    seeded: SeedResult,
    path: str,
    payload: dict[str, Any],
) -> None:
    with ctx.db.read() as conn:
        before = len(conn.execute(select(audit_log)).all())
    response = client.put(path, json=payload, headers=admin_headers)
    assert response.status_code == 400, response.text
    with ctx.db.read() as conn:
        assert len(conn.execute(select(audit_log)).all()) == before


def test_a_feature_of_an_unknown_app_is_404(
    client: TestClient, admin_headers: dict[str, str], seeded: SeedResult
) -> None:
    response = client.put("/v1/admin/apps/nope/features/f", json={"display_name": "x"}, headers=admin_headers)
    assert response.status_code == 404


def test_a_feature_the_app_does_not_have_is_refused_404_for_that_event_only(
    client: TestClient,
    gateway_headers: dict[str, str],
    admin_headers: dict[str, str],
    ctx: ServiceContext,
    seeded: SeedResult,
) -> None:
    single = client.post(URL, json=body("nf-1", feature_key="no_such_feature"), headers=gateway_headers)
    assert single.status_code == 404
    error = single.json()["error"]
    assert (error["code"], error["message"], error["details"]) == (
        "not_found",
        "Feature was not found for this app.",
        {"feature_key": "no_such_feature"},
    )
    # A feature of another app is not this app's.
    developer = client.post(
        "/v1/admin/developers", json={"name": "Other", "email": "other@example.com"}, headers=admin_headers
    ).json()
    other_app = {"developer_id": developer["id"], "public_app_id": "app_other", "name": "Other"}
    assert (
        client.post("/v1/admin/apps", json={**other_app, "default_revenue_share_bps": 0}, headers=admin_headers)
    ).status_code == 201
    assert (
        client.put("/v1/admin/apps/app_other/features/other_only", json={"display_name": "x"}, headers=admin_headers)
    ).status_code == 200
    batch = client.post(
        URL, json={"events": [body("nf-2", feature_key="other_only"), body("nf-ok")]}, headers=gateway_headers
    )
    assert batch.status_code == 200, batch.text
    first, second = batch.json()["items"]
    assert (first["status"], first["error"]["code"], first["error"]["status"]) == ("rejected", "not_found", 404)
    assert first["error"]["details"] == {"feature_key": "other_only"}
    assert second["status"] == "recorded"
    assert usage_count(ctx) == 1
    assert posting_count(ctx) == 4


def test_a_feature_without_pricing_of_its_own_is_rated_with_the_app_defaults(
    client: TestClient, gateway_headers: dict[str, str], admin_headers: dict[str, str], seeded: SeedResult
) -> None:
    # app_pub_demo's defaults: markup 30 %, channel share 4000 bps.
    feature = client.put(
        "/v1/admin/apps/app_pub_demo/features/plain", json={"display_name": "Plain"}, headers=admin_headers
    )
    assert feature.status_code == 200, feature.text
    assert feature.json()["pricing"]["markup_percent"] is None
    response = client.post(URL, json=body("plain-1", feature_key="plain"), headers=gateway_headers)
    assert response.status_code == 201, response.text
    data = response.json()
    assert (data["upstream_cost_usd"], data["retail_price_usd"]) == ("0.00105000", "0.00136500")
    assert (data["channel_revenue_usd"], data["platform_revenue_usd"]) == ("0.00012600", "0.00018900")
