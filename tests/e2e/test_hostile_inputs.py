"""Hostile inputs at the edge answer 400 (never 500) and write nothing (issue 18).

Deep nesting and unpaired surrogate escapes are refused by the edge middleware before the
hand-parsed routes (usage, webhook) see the body; digits outside ASCII, extreme dates and
lookalike whitespace are refused where each value is parsed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import usage_events
from modelfaucet.cli.main import app as cli_app
from modelfaucet.config import Settings
from modelfaucet.http.app import create_app
from modelfaucet.http.json_guard import MAX_JSON_DEPTH
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.seed import SeedResult
from tests.conftest import ADMIN_TOKEN, with_settings
from tests.stripe_support import WEBHOOK_SECRET, counts, event_bytes, pending_topup, session_user, signature_for

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
JSON = {"Content-Type": "application/json"}


def usage_event(request_id: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "public_app_id": "app_pub_demo",
        "external_user_id": "demo-user-1",
        "feature_key": "customer_reply",
        "route_mode": "platform",
        "provider": "mock",
        "model": "mock-small",
        "input_tokens": 10,
        "output_tokens": 10,
    }


def recorded_usage(database: Database) -> int:
    with database.read() as conn:
        return int(conn.execute(select(func.count()).select_from(usage_events)).scalar_one())


def assert_invalid_request(response: Any, *, mentions: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert mentions in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


@pytest.fixture
def signed_client(database: Database, settings: Settings) -> Iterator[TestClient]:
    configured = with_settings(settings, stripe_webhook_secret=WEBHOOK_SECRET)
    with TestClient(create_app(configured, db=database), raise_server_exceptions=False) as c:
        yield c


# --- deep nesting -------------------------------------------------------------------------


def with_extra_field(event: dict[str, Any], raw_value: bytes) -> bytes:
    return json.dumps(event).encode()[:-1] + b',"x":' + raw_value + b"}"


DEEP_BODIES = {
    "lists": b"[" * 100_000 + b"]" * 100_000,
    "objects": b'{"a":' * 40_000 + b"1" + b"}" * 40_000,
    "inside a usage event": with_extra_field(usage_event("deep-1"), b"[" * 70_000 + b"]" * 70_000),
}


@pytest.mark.parametrize("shape", DEEP_BODIES)
def test_a_deeply_nested_usage_body_is_refused_before_it_is_parsed(
    client: TestClient, gateway_headers: dict[str, str], seeded: SeedResult, database: Database, shape: str
) -> None:
    response = client.post("/v1/usage/events", content=DEEP_BODIES[shape], headers={**gateway_headers, **JSON})
    assert_invalid_request(response, mentions=f"nested deeper than {MAX_JSON_DEPTH} levels")
    assert recorded_usage(database) == 0


@pytest.mark.parametrize("shape", DEEP_BODIES)
def test_a_deeply_nested_webhook_body_is_refused_before_it_is_parsed(
    signed_client: TestClient, ctx: ServiceContext, seeded: SeedResult, shape: str
) -> None:
    before = counts(ctx)
    payload = DEEP_BODIES[shape]
    response = signed_client.post(
        "/v1/stripe/webhook", content=payload, headers={**JSON, "Stripe-Signature": signature_for(payload)}
    )
    assert_invalid_request(response, mentions="nested deeper")
    assert counts(ctx) == before


def test_nesting_up_to_the_limit_reaches_the_route(
    client: TestClient, gateway_headers: dict[str, str], seeded: SeedResult
) -> None:
    body = with_extra_field(usage_event("nested-ok"), b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1))
    response = client.post("/v1/usage/events", content=body, headers={**gateway_headers, **JSON})
    assert response.status_code == 400
    assert "nested" not in response.json()["error"]["message"]  # the route's own refusal: an unknown field


# --- unpaired surrogate escapes -----------------------------------------------------------


def test_a_usage_batch_with_a_lone_surrogate_writes_nothing_and_the_fixed_batch_records(
    client: TestClient, gateway_headers: dict[str, str], seeded: SeedResult, database: Database
) -> None:
    events = [usage_event("batch-ok-1"), usage_event("batch-bad-2-\udc80"), usage_event("batch-ok-3")]
    body = json.dumps({"events": events}).encode()  # ensure_ascii: the lone half travels as \udc80
    assert b"\\udc80" in body
    refused = client.post("/v1/usage/events", content=body, headers={**gateway_headers, **JSON})
    assert_invalid_request(refused, mentions="unpaired UTF-16 surrogate escape")
    assert recorded_usage(database) == 0

    events[1]["request_id"] = "batch-fixed-2"
    retried = client.post("/v1/usage/events", json={"events": events}, headers=gateway_headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["summary"] == {"recorded": 3, "duplicate": 0, "rejected": 0}
    assert recorded_usage(database) == 3


@pytest.mark.parametrize(
    "escape",
    [b"\\ud800", b"\\udc80", b"\\uDBFF", b"\\ud83d\\ud83d", b"\\ude00\\ud83d", b"\\ud83d\\\\\\ude00", b"\\\\\\udc80"],
)
def test_a_single_usage_event_with_a_lone_surrogate_is_refused(
    client: TestClient, gateway_headers: dict[str, str], seeded: SeedResult, database: Database, escape: bytes
) -> None:
    body = json.dumps(usage_event("PLACEHOLDER")).encode().replace(b"PLACEHOLDER", b"lone-" + escape)
    response = client.post("/v1/usage/events", content=body, headers={**gateway_headers, **JSON})
    assert_invalid_request(response, mentions="surrogate")
    assert recorded_usage(database) == 0


@pytest.mark.parametrize("text", [b"\\ud83d\\ude00", b"\\\\udc80", b"\\\\ud800", b"\\u00e9"])
def test_paired_or_escaped_backslash_text_is_stored_as_sent(
    client: TestClient, gateway_headers: dict[str, str], seeded: SeedResult, database: Database, text: bytes
) -> None:
    body = json.dumps(usage_event("PLACEHOLDER")).encode().replace(b"PLACEHOLDER", b"paired-" + text)
    response = client.post("/v1/usage/events", content=body, headers={**gateway_headers, **JSON})
    assert response.status_code == 201, response.text
    assert recorded_usage(database) == 1


@pytest.mark.parametrize("field", ["event_id", "event_type"])
def test_a_signed_webhook_with_a_lone_surrogate_in_its_id_or_type_writes_nothing(
    signed_client: TestClient, ctx: ServiceContext, seeded: SeedResult, field: str
) -> None:
    topup = pending_topup(ctx, session_user(ctx, seeded))
    value = {"event_id": "evt_\udc80", "event_type": "checkout.session.\ud800completed"}[field]
    payload = event_bytes(session_id=topup.checkout_session_id, **{field: value})
    before = counts(ctx)
    response = signed_client.post(
        "/v1/stripe/webhook", content=payload, headers={**JSON, "Stripe-Signature": signature_for(payload)}
    )
    assert_invalid_request(response, mentions="surrogate")
    assert counts(ctx) == before


# --- Unicode digits in the Stripe-Signature header ------------------------------------------


def post_raw_headers(client: TestClient, path: str, content: bytes, headers: dict[str, bytes]) -> httpx.Response:
    """POST through httpx's ASGI transport, which hands header bytes over as they are (the
    TestClient re-encodes them as UTF-8, so a latin-1 byte such as 0xB2 never arrives)."""

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app), base_url="http://t") as http:
            return await http.post(path, content=content, headers=headers)

    return asyncio.run(call())


# ², ³ and ¹ are the latin-1 characters (a header's alphabet) that str.isdigit() calls digits.
@pytest.mark.parametrize("timestamp", [b"\xb2", b"1\xb2", b"\xb3", b"\xb9" * 10])
def test_a_signature_timestamp_in_non_ascii_digits_is_a_400(
    signed_client: TestClient, ctx: ServiceContext, seeded: SeedResult, timestamp: bytes
) -> None:
    payload = event_bytes(session_id="cs_test_unicode_digits")
    before = counts(ctx)
    header = b"t=" + timestamp + b",v1=00"
    response = post_raw_headers(
        signed_client, "/v1/stripe/webhook", payload, {"Content-Type": b"application/json", "Stripe-Signature": header}
    )
    assert_invalid_request(response, mentions="Stripe-Signature")
    assert counts(ctx) == before


# --- extreme dates in report and audit-log bounds --------------------------------------------

EXTREME_BOUNDS = [
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31",
    "0001-01-01",
    "1969-12-31T23:59:59Z",
    "9999-01-01T00:00:00Z",
    "２０２５-01-01",
    "2025-01-01T00:00:00+24:00",
]
BOUNDED_ROUTES = ["/v1/admin/reports/usage.csv", "/v1/admin/reports/revenue.csv", "/v1/admin/audit-log"]


@pytest.mark.parametrize("route", BOUNDED_ROUTES)
@pytest.mark.parametrize("bound", EXTREME_BOUNDS)
def test_an_extreme_time_bound_is_a_400_naming_the_parameter(client: TestClient, route: str, bound: str) -> None:
    for name in ("from", "to"):
        response = client.get(route, params={name: bound}, headers=ADMIN)
        assert_invalid_request(response, mentions=f"{name} must be an ISO-8601 date or time")
        assert response.json()["error"]["details"] == {"field": name}


@pytest.mark.parametrize("route", BOUNDED_ROUTES)
def test_the_widest_sane_bounds_are_accepted(client: TestClient, route: str) -> None:
    response = client.get(
        route, params={"from": "1970-01-01T00:00:00Z", "to": "9998-12-31T23:59:59+00:00"}, headers=ADMIN
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("bound", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "1900-01-01"])
def test_the_reports_command_refuses_an_extreme_bound_with_a_usage_error(
    db_url: str, tmp_path: Path, bound: str
) -> None:
    result = CliRunner().invoke(
        cli_app, ["reports", "usage", "-o", str(tmp_path / "u.csv"), "--from", bound], env={"DATABASE_URL": db_url}
    )
    assert result.exit_code == 2, result.output
    assert "from must be an ISO-8601 date or time" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "u.csv").exists()
