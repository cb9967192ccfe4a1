"""The HTTP edge: admin auth, the error format of SPEC §3, request ids, body limit, operations."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from modelfaucet.adapters.db.database import Database
from modelfaucet.config import Settings
from modelfaucet.http.app import create_app
from modelfaucet.http.schemas import PositiveUsdUnits, StrictModel
from modelfaucet.services.seed import SeedResult
from tests.conftest import ADMIN_TOKEN, GATEWAY_TOKEN, with_settings

RECONCILIATION = "/v1/admin/reconciliation/ledger"


class _Echo(StrictModel):
    amount_usd: PositiveUsdUnits
    note: str


def _app_with_probe_routes(settings: Settings, database: Database) -> TestClient:
    """The real app plus two probe routes exercising body parsing and unexpected failures."""
    app = create_app(settings, db=database)
    probe = APIRouter()

    @probe.post("/probe/echo")
    def echo(body: _Echo) -> dict[str, int]:
        return {"amount_units": body.amount_usd}

    @probe.get("/probe/boom")
    def boom() -> None:
        raise RuntimeError(f"secret detail {ADMIN_TOKEN}")

    app.include_router(probe)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def probe_client(settings: Settings, database: Database) -> Iterator[TestClient]:
    with _app_with_probe_routes(settings, database) as client:
        yield client


def _assert_error(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "request_id", "details"}
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]  # type: ignore[attr-defined]
    return dict(error)


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "missing"),
        ({"Authorization": "Bearer wrong-token"}, "wrong"),
        ({"Authorization": f"Basic {ADMIN_TOKEN}"}, "wrong scheme"),
        ({"Authorization": "Bearer "}, "empty"),
        ({"Authorization": f"Bearer {ADMIN_TOKEN}x"}, "prefix of a longer token"),
    ],
)
def test_admin_routes_refuse_a_missing_or_wrong_token(client: TestClient, headers: dict[str, str], why: str) -> None:
    _assert_error(client.get(RECONCILIATION, headers=headers), 401, "invalid_session")


# Latin-1 bytes, as a client sends them: U+00A0 (no-break space) and U+0085 (next line) are
# whitespace to str.strip(), but part of the token as sent.
LOOKALIKE_PADDING = [b"\xa0", b"\x85", b"\xa0\xa0", b"\x85 "]


def _status_with_raw_authorization(app: FastAPI, method: str, path: str, authorization: bytes) -> int:
    """Through httpx's ASGI transport, which hands the header bytes over as they are (the
    TestClient re-encodes them as UTF-8, so a lone 0xA0 byte never arrives)."""

    async def call() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.request(method, path, headers={"Authorization": authorization}, json={})
            if response.status_code == 401:
                assert response.json()["error"]["code"] == "invalid_session"
            return response.status_code

    return asyncio.run(call())


@pytest.mark.parametrize("padding", LOOKALIKE_PADDING)
def test_admin_operator_and_gateway_tokens_with_unicode_whitespace_around_them_are_refused(
    settings: Settings, database: Database, padding: bytes
) -> None:
    named = with_settings(settings, operator_tokens={"alice": "alice-token-1234567890"})
    app = create_app(named, db=database)
    for token, method, path in [
        (ADMIN_TOKEN, "GET", RECONCILIATION),
        ("alice-token-1234567890", "GET", RECONCILIATION),
        (GATEWAY_TOKEN, "POST", "/v1/usage/events"),
    ]:
        exact = _status_with_raw_authorization(app, method, path, b"Bearer " + token.encode())
        assert exact in (200, 400), (token, exact)  # accepted (400: the empty usage body)
        for header in (b"Bearer " + token.encode() + padding, b"Bearer " + padding + token.encode()):
            assert _status_with_raw_authorization(app, method, path, header) == 401, (token, header)


def test_spaces_and_tabs_around_a_token_are_still_allowed(client: TestClient, gateway_headers: dict[str, str]) -> None:
    assert client.get(RECONCILIATION, headers={"Authorization": f"Bearer \t{ADMIN_TOKEN} \t"}).status_code == 200
    padded = client.post("/v1/usage/events", json={}, headers={"Authorization": gateway_headers["Authorization"] + " "})
    assert padded.status_code == 400  # through the token check, refused for its empty body


def test_admin_routes_accept_the_admin_token(client: TestClient, admin_headers: dict[str, str]) -> None:
    response = client.get(RECONCILIATION, headers=admin_headers)
    assert response.status_code == 200
    assert response.json()["summary"] == {"wallet_count": 0, "balanced_count": 0, "mismatch_count": 0}


def test_admin_routes_are_closed_when_no_token_is_configured(settings: Settings, database: Database) -> None:
    closed = with_settings(settings, admin_token=None)
    with TestClient(create_app(closed, db=database)) as client:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
            _assert_error(client.get(RECONCILIATION, headers=headers), 401, "invalid_session")


def test_named_operator_tokens_are_accepted(settings: Settings, database: Database) -> None:
    named = with_settings(settings, admin_token=None, operator_tokens={"alice": "alice-token-1234567890"})
    with TestClient(create_app(named, db=database)) as client:
        ok = client.get(RECONCILIATION, headers={"Authorization": "Bearer alice-token-1234567890"})
        assert ok.status_code == 200
        _assert_error(client.get(RECONCILIATION, headers={"Authorization": "Bearer bob"}), 401, "invalid_session")


def test_the_seed_reconciliation_curl_shows_ten_dollars_balanced(
    client: TestClient, admin_headers: dict[str, str], seeded: SeedResult
) -> None:
    body = client.get(RECONCILIATION, headers=admin_headers).json()
    assert body["summary"] == {"wallet_count": 4, "balanced_count": 4, "mismatch_count": 0}
    [end_user] = [item for item in body["items"] if item["owner_scope"] == "end_user"]
    assert end_user == {
        "wallet_id": seeded.end_user_wallet_id,
        "owner_scope": "end_user",
        "owner_id": seeded.end_user_id,
        "wallet_balance_usd": "10.00000000",
        "ledger_balance_usd": "10.00000000",
        "delta_usd": "0.00000000",
        "status": "balanced",
    }
    assert body["ok"] is True
    assert body["generated_at"].endswith("Z")


def test_wallet_detail_shows_balance_reserved_available_and_entries(
    client: TestClient, admin_headers: dict[str, str], seeded: SeedResult
) -> None:
    body = client.get(f"/v1/admin/wallets/{seeded.end_user_wallet_id}", headers=admin_headers).json()
    assert body["balance_usd"] == "10.00000000"
    assert body["reserved_usd"] == "0.00000000"
    assert body["available_usd"] == "10.00000000"
    assert [entry["reason"] for entry in body["recent_entries"]] == ["seed_opening_balance"]
    listed = client.get("/v1/admin/wallets", params={"owner_scope": "end_user"}, headers=admin_headers).json()
    assert [w["id"] for w in listed["items"]] == [seeded.end_user_wallet_id]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/admin/wallets/not-a-uuid", 400, "invalid_request"),
        ("/v1/admin/wallets/00000000-0000-0000-0000-000000000000", 404, "not_found"),
        ("/v1/admin/wallets?owner_scope=martian", 400, "invalid_request"),
        ("/v1/admin/wallets?limit=0", 400, "invalid_request"),
        ("/no/such/route", 404, "not_found"),
    ],
)
def test_bad_ids_and_unknown_resources_get_the_spec_error_shape(
    client: TestClient, admin_headers: dict[str, str], path: str, status: int, code: str
) -> None:
    _assert_error(client.get(path, headers=admin_headers), status, code)


def test_malformed_json_is_a_400_not_a_422(probe_client: TestClient) -> None:
    response = probe_client.post("/probe/echo", content=b"{not json", headers={"content-type": "application/json"})
    error = _assert_error(response, 400, "invalid_request")
    assert "not valid JSON" in str(error["message"])
    # The body is named as the field, never the decoder's character position ("field": "1").
    details = error["details"]
    assert details["field"] == "body"  # type: ignore[index]
    assert "at character 1" in details["reason"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount_usd": 2.5, "note": "x"}, "amount_usd"),
        ({"amount_usd": "-1", "note": "x"}, "amount_usd"),
        ({"amount_usd": "0", "note": "x"}, "amount_usd"),
        ({"amount_usd": "1e3", "note": "x"}, "amount_usd"),
        ({"note": "x"}, "amount_usd"),
        ({"amount_usd": "1.00", "note": "x", "extra": 1}, "extra"),
    ],
)
def test_invalid_fields_are_named_in_a_400(probe_client: TestClient, body: dict[str, object], field: str) -> None:
    error = _assert_error(probe_client.post("/probe/echo", json=body), 400, "invalid_request")
    assert field in str(error["message"])
    assert error["details"]["field"] == field  # type: ignore[index]
    assert error["details"]["reason"]  # type: ignore[index]


def test_a_valid_money_string_reaches_the_route_as_integer_units(probe_client: TestClient) -> None:
    response = probe_client.post("/probe/echo", json={"amount_usd": "2.50000000", "note": "x"})
    assert response.json() == {"amount_units": 250_000_000}


def test_an_unexpected_error_is_a_500_without_a_stack_trace_or_secret(probe_client: TestClient) -> None:
    response = probe_client.get("/probe/boom")
    error = _assert_error(response, 500, "internal_error")
    assert "Traceback" not in response.text
    assert "secret detail" not in response.text
    assert ADMIN_TOKEN not in response.text
    assert error["details"] == {}


def test_every_response_carries_a_request_id_and_echoes_the_callers(client: TestClient) -> None:
    generated = client.get("/health")
    assert generated.headers["x-request-id"].startswith("req_")
    echoed = client.get("/health", headers={"x-request-id": "gw-abc-123"})
    assert echoed.headers["x-request-id"] == "gw-abc-123"
    refused = client.get(RECONCILIATION, headers={"x-request-id": "caller-77"})
    assert refused.json()["error"]["request_id"] == "caller-77"


def test_an_unusable_caller_request_id_is_replaced(client: TestClient) -> None:
    response = client.get("/health", headers={"x-request-id": "bad id with spaces\t" + "x" * 200})
    assert response.headers["x-request-id"].startswith("req_")


def test_a_body_over_the_limit_is_refused_with_413(settings: Settings, database: Database) -> None:
    small = with_settings(settings, max_body_bytes=2048)
    with _app_with_probe_routes(small, database) as client:
        big = b'{"amount_usd": "1.00", "note": "' + b"x" * 4096 + b'"}'
        declared = client.post("/probe/echo", content=big, headers={"content-type": "application/json"})
        _assert_error(declared, 413, "invalid_request")

        def chunks() -> Iterator[bytes]:
            yield big[:1000]
            yield big[1000:]

        streamed = client.post("/probe/echo", content=chunks(), headers={"content-type": "application/json"})
        _assert_error(streamed, 413, "invalid_request")
        fits = client.post("/probe/echo", json={"amount_usd": "1.00", "note": "x" * 100})
        assert fits.status_code == 200


def test_security_headers_are_on_every_response(client: TestClient) -> None:
    for response in (client.get("/health"), client.get("/nope")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"


def test_health_ready_metrics_and_docs(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready", "database": "reachable", "migrations": "current"}
    client.get("/nope")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert "modelfaucet_http_requests_total" in metrics.text
    assert 'route="/health"' in metrics.text
    spec = client.get("/openapi.json").json()
    assert RECONCILIATION in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_ready_reports_an_unmigrated_database_as_not_ready(settings: Settings, tmp_path: object) -> None:
    empty = Database.from_url(f"sqlite:///{tmp_path}/empty.sqlite3")
    try:
        with TestClient(create_app(settings, db=empty)) as client:
            response = client.get("/ready")
            assert response.status_code == 503
            assert response.json()["migrations"] == "pending"
            assert client.head("/ready").status_code == 503
    finally:
        empty.dispose()


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_head_answers_like_get_without_a_body(client: TestClient, path: str) -> None:
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code == 200
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["x-request-id"].startswith("req_")
    assert head.content == b""


def test_head_is_not_a_separate_operation_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/health"]) == {"get"} and set(paths["/ready"]) == {"get"}


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/v1/admin/wallets", {}),
        ("GET", "/v1/admin/wallets", {"Authorization": "Bearer wrong"}),
        ("POST", "/v1/usage/events", {"Authorization": "Basic dXNlcjpwYXNz"}),
        ("GET", "/v1/user/wallet", {"Authorization": "Bearer mf_sess_expired_or_unknown"}),
    ],
)
def test_every_401_names_the_bearer_scheme_it_accepts(
    client: TestClient, method: str, path: str, headers: dict[str, str]
) -> None:
    response = client.request(method, path, headers=headers)
    _assert_error(response, 401, response.json()["error"]["code"])
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_refusal_that_is_not_a_401_carries_no_authentication_challenge(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    response = client.get("/v1/admin/wallets/not-a-uuid", headers=admin_headers)
    assert response.status_code == 400
    assert "www-authenticate" not in response.headers


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/usage/events"), ("POST", "/v1/usage/holds"), ("POST", "/v1/stripe/webhook")],
)
def test_the_gateways_and_stripes_routes_are_matched_before_every_other_router(
    settings: Settings, database: Database, method: str, path: str
) -> None:
    """Each request is matched against the app's routers in order, and every router passed
    costs CPU: the routes called for every model call and every payment come first."""
    from starlette.routing import Match

    app = create_app(settings, db=database)
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": [], "query_string": b""}
    position = next(i for i, route in enumerate(app.router.routes) if route.matches(scope)[0] is Match.FULL)
    routers_before = [route for route in app.router.routes[:position] if not hasattr(route, "path")]
    assert len(routers_before) <= 2, f"{path} is matched after {len(routers_before)} other routers"
