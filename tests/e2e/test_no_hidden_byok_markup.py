"""No hidden BYOK markup, end to end: whatever the pricing says, a BYOK or local call costs
only the feature's explicit gateway fee, carries zero upstream cost to the platform, and
the fee is visible in the usage row and in usage.csv.

Independent of the rating module's own property test: this one drives the HTTP API (admin
pricing, gateway usage reports, the CSV report) with random pricings.
"""

from __future__ import annotations

import csv
import io
import itertools
from decimal import Decimal

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelfaucet.domain.money import format_usd
from modelfaucet.services.seed import SeedResult

_ids = itertools.count()

pricings = st.fixed_dictionaries(
    {
        "markup_percent": st.integers(0, 100_000).map(
            lambda bps: str(bps // 100) if bps % 100 == 0 else f"{bps // 100}.{bps % 100:02d}"
        ),
        "channel_share_bps": st.integers(0, 10_000),
        "fee_units": st.integers(0, 1_000_000),  # up to 0.01 USD per call
    }
)
model_prices = st.tuples(st.integers(0, 10**10), st.integers(0, 10**10), st.integers(0, 10**10))
calls = st.fixed_dictionaries(
    {
        "route_mode": st.sampled_from(["byok", "local"]),
        "input_tokens": st.integers(0, 10**7),
        "output_tokens": st.integers(0, 10**7),
        "cached_tokens": st.integers(0, 10**6),
        "reported_upstream_units": st.none() | st.integers(1, 10**9),
    }
)


def _wallet_balance(client: TestClient, admin: dict[str, str], scope: str) -> Decimal:
    items = client.get("/v1/admin/wallets", headers=admin, params={"owner_scope": scope}).json()["items"]
    return sum((Decimal(item["balance_usd"]) for item in items), Decimal(0))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pricing=pricings, price=model_prices, call=calls)
def test_byok_and_local_calls_cost_only_the_visible_fee_whatever_the_pricing(
    *,
    client: TestClient,
    seeded: SeedResult,
    admin_headers: dict[str, str],
    gateway_headers: dict[str, str],
    pricing: dict[str, int | str],
    price: tuple[int, int, int],
    call: dict[str, object],
) -> None:
    fee = format_usd(int(pricing["fee_units"]))
    feature = client.put(
        f"/v1/admin/apps/{seeded.public_app_id}/features/{seeded.feature_key}",
        headers=admin_headers,
        json={
            "display_name": "Customer reply",
            "pricing": {
                "markup_percent": pricing["markup_percent"],
                "channel_share_bps": pricing["channel_share_bps"],
                "explicit_gateway_fee_usd": fee,
            },
        },
    )
    assert feature.status_code == 200, feature.text
    model_price = client.put(
        "/v1/admin/model-prices/mock/mock-small",
        headers=admin_headers,
        json={
            "input_per_1m_usd": format_usd(price[0]),
            "output_per_1m_usd": format_usd(price[1]),
            "cached_per_1m_usd": format_usd(price[2]),
        },
    )
    assert model_price.status_code == 200, model_price.text
    provider_cost_before = _wallet_balance(client, admin_headers, "provider_cost")

    request_id = f"byok-prop-{next(_ids)}"
    event: dict[str, object] = {
        "request_id": request_id,
        "public_app_id": seeded.public_app_id,
        "external_user_id": seeded.external_user_id,
        "feature_key": seeded.feature_key,
        "route_mode": call["route_mode"],
        "provider": "mock",
        "model": "mock-small",
        "input_tokens": call["input_tokens"],
        "output_tokens": call["output_tokens"],
        "cached_tokens": call["cached_tokens"],
    }
    if call["reported_upstream_units"] is not None:
        event["upstream_cost_usd"] = format_usd(int(call["reported_upstream_units"]))  # type: ignore[call-overload]
    recorded = client.post("/v1/usage/events", headers=gateway_headers, json=event)
    assert recorded.status_code == 201, recorded.text
    body = recorded.json()

    assert body["upstream_cost_usd"] == "0.00000000"
    assert body["retail_price_usd"] == fee
    assert body["gateway_fee_usd"] == fee
    assert Decimal(body["channel_revenue_usd"]) + Decimal(body["platform_revenue_usd"]) == Decimal(fee)
    assert _wallet_balance(client, admin_headers, "provider_cost") == provider_cost_before

    report = client.get("/v1/admin/reports/usage.csv", headers=admin_headers)
    assert report.status_code == 200
    (row,) = [r for r in csv.DictReader(io.StringIO(report.text)) if r["request_id"] == request_id]
    assert row["route_mode"] == call["route_mode"]
    assert row["upstream_cost_usd"] == "0.00000000"
    assert row["retail_price_usd"] == fee
    assert Decimal(row["channel_revenue_usd"]) + Decimal(row["platform_revenue_usd"]) == Decimal(fee)
