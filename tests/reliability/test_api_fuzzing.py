# ruff: noqa: E501 - the bad-input corpus is a table, one case per line
"""API fuzzing: schemathesis against the OpenAPI document, plus a corpus of hostile inputs.

Every operation in the document is called with generated requests (schema-valid bodies,
parameters and headers) under the right valid credentials (admin, gateway or an end-user
session). No response may be a 5xx, every status must be documented for its operation and
every body must match its documented schema. Afterwards the ledger is still balanced.

Then a table of bad inputs against the main write endpoints, each expecting the SPEC §3
error (status, code, JSON body with the request id) and nothing written.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import adjustments, audit_log, ledger_postings, stripe_topups, usage_events
from modelfaucet.config import Settings
from modelfaucet.http.app import create_app
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.developer_tokens import issue_developer_token
from modelfaucet.services.seed import SeedResult
from modelfaucet.services.sessions import create_session
from tests.conftest import ADMIN_TOKEN, APP_KEY_HEADERS, GATEWAY_TOKEN
from tests.reliability.support import invariant_violations, scaled

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GATEWAY = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def app(database: Database, settings: Settings, seeded: SeedResult) -> FastAPI:
    # Rate limits off: the fuzzer is one client sending many requests on purpose.
    return create_app(Settings(**{**settings.__dict__, "rate_limit_per_minute": 0}), db=database)


@pytest.fixture
def session_headers(ctx: ServiceContext, seeded: SeedResult) -> dict[str, str]:
    created = create_session(
        ctx, secret_key=seeded.app_secret_key, public_app_id="app_pub_demo", external_user_id="demo-user-1"
    )
    return {"Authorization": f"Bearer {created.token}"}


@pytest.fixture
def developer_headers(ctx: ServiceContext, seeded: SeedResult) -> dict[str, str]:
    issued = issue_developer_token(ctx, Actor("fuzz"), developer_id=seeded.developer_id, name="fuzz")
    return {"Authorization": f"Bearer {issued.token}"}


def credentials_for(path: str, session: dict[str, str], developer: dict[str, str]) -> dict[str, str]:
    if path.startswith("/v1/user/"):
        return session
    if path.startswith("/v1/developer/"):
        return developer
    if path == "/v1/sessions":
        return APP_KEY_HEADERS
    if path.startswith("/v1/usage/"):
        return GATEWAY
    if path.startswith(("/v1/admin/", "/v1/apps/")):
        return ADMIN
    return {}


def test_every_operation_answers_within_its_schema_and_never_5xx(
    app: FastAPI, session_headers: dict[str, str], developer_headers: dict[str, str], ctx: ServiceContext
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    statuses: Counter[int] = Counter()
    for operation in operations:
        if operation.path == "/v1/stripe/webhook":
            continue  # raw signed bytes: covered by the corpus below and the webhook tests

        @given(case=operation.as_strategy())
        @settings(
            max_examples=scaled(6, 60),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            headers = credentials_for(case.operation.path, session_headers, developer_headers)
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses[response.status_code] += 1

        fuzz()
    assert not any(status >= 500 for status in statuses), statuses
    print(f"\nschemathesis: {len(operations)} operations, {sum(statuses.values())} requests, {dict(statuses)}")
    assert invariant_violations(ctx) == []


def test_the_openapi_document_says_validation_errors_are_400_not_422(app: FastAPI) -> None:
    document = app.openapi()
    assert "HTTPValidationError" not in json.dumps(document)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                assert responses["400"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorResponse"
                }, (method, path)
    with TestClient(app, raise_server_exceptions=False) as client:
        answered = client.get("/v1/admin/audit-log?limit=not-a-number", headers=ADMIN)
    assert answered.status_code == 400 and answered.json()["error"]["code"] == "invalid_request"


# --- a corpus of bad inputs ---------------------------------------------------------------

ADJUSTMENT = {"kind": "refund", "direction": "credit", "amount_usd": "2.50000000", "reason": "corpus"}
USAGE = {
    "request_id": "corpus-1",
    "public_app_id": "app_pub_demo",
    "external_user_id": "demo-user-1",
    "feature_key": "customer_reply",
    "route_mode": "platform",
    "provider": "mock",
    "model": "mock-small",
    "input_tokens": 10,
    "output_tokens": 10,
}
CHECKOUT = {"amount_usd": "5.00000000", "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"}

BAD_MONEY = [
    "-1.00000000", "+1.00000000", "1e3", "1.000000001", "01.00", "1.", ".5", " 1.00", "1.00 ", "1,00", "0x10",
    "NaN", "Infinity", "١٢٣", "1.0٠", "９", "", "1000000000000.00000000", "9" * 40, "0.00000000",
]  # fmt: skip
BAD_JSON_VALUES: list[Any] = [2.5, 2, True, None, [], {}, "2.5e0"]

# (name, endpoint, body or raw bytes, headers override, expected status, expected code)
Row = tuple[str, str, Any, dict[str, str] | None, int, str]


def corpus() -> list[Row]:
    rows: list[Row] = []
    for value in BAD_MONEY:
        rows.append(
            (
                f"adjust money {value[:12]!r}",
                "adjust",
                {**ADJUSTMENT, "amount_usd": value},
                None,
                400,
                "invalid_request",
            )
        )
        rows.append(
            (
                f"checkout money {value[:12]!r}",
                "checkout",
                {**CHECKOUT, "amount_usd": value},
                None,
                400,
                "invalid_request",
            )
        )
        if value == "0.00000000":
            continue  # a zero upstream cost is a valid report
        rows.append(
            (f"usage cost {value[:12]!r}", "usage", {**USAGE, "upstream_cost_usd": value}, None, 400, "invalid_request")
        )
    for value in BAD_JSON_VALUES:
        rows.append(
            (
                f"adjust money json {value!r}",
                "adjust",
                {**ADJUSTMENT, "amount_usd": value},
                None,
                400,
                "invalid_request",
            )
        )
    huge = [10**30, -1, 1.5, "12", True, None, 2**63]
    for value in huge:
        rows.append(
            (f"usage tokens {value!r}", "usage", {**USAGE, "input_tokens": value}, None, 400, "invalid_request")
        )
    rows += [
        ("adjust unknown kind", "adjust", {**ADJUSTMENT, "kind": "gift"}, None, 400, "invalid_request"),
        ("adjust unknown direction", "adjust", {**ADJUSTMENT, "direction": "sideways"}, None, 400, "invalid_request"),
        ("adjust extra field", "adjust", {**ADJUSTMENT, "wallet_id": "x"}, None, 400, "invalid_request"),
        ("adjust blank reason", "adjust", {**ADJUSTMENT, "reason": "   "}, None, 400, "invalid_request"),
        ("adjust reason 1001 chars", "adjust", {**ADJUSTMENT, "reason": "é" * 1001}, None, 400, "invalid_request"),
        ("adjust short key", "adjust", {**ADJUSTMENT, "idempotency_key": "short"}, None, 400, "invalid_request"),
        ("adjust unicode key", "adjust", {**ADJUSTMENT, "idempotency_key": "ключ-идемпотентности"}, None, 400, "invalid_request"),
        ("adjust key header differs", "adjust", {**ADJUSTMENT, "idempotency_key": "body-key-0001"}, {"Idempotency-Key": "head-key-0001"}, 400, "invalid_request"),
        ("adjust NUL in reason", "adjust", {**ADJUSTMENT, "reason": "a\u0000b"}, None, 400, "invalid_request"),
        ("adjust NUL in key", "adjust", {**ADJUSTMENT, "idempotency_key": "key\u0000-0001"}, None, 400, "invalid_request"),
        ("adjust body is a list", "adjust", [ADJUSTMENT], None, 400, "invalid_request"),
        ("adjust body not json", "adjust", b"{kind: refund", None, 400, "invalid_request"),
        ("adjust body invalid utf-8", "adjust", b'{"reason": "\xff\xfe"}', None, 400, "invalid_request"),
        ("adjust no token", "adjust", ADJUSTMENT, {"Authorization": ""}, 401, "invalid_session"),
        ("adjust wrong token", "adjust", ADJUSTMENT, {"Authorization": "Bearer nope"}, 401, "invalid_session"),
        ("adjust gateway token", "adjust", ADJUSTMENT, GATEWAY, 401, "invalid_session"),
        ("adjust oversized body", "adjust", {**ADJUSTMENT, "reason": "x" * 2_000_000}, None, 413, "invalid_request"),
        ("adjust bad wallet uuid", "adjust-bad-uuid", ADJUSTMENT, None, 400, "invalid_request"),
        ("adjust unknown wallet", "adjust-unknown-wallet", ADJUSTMENT, None, 404, "not_found"),
        ("usage no token", "usage", USAGE, {"Authorization": ""}, 401, "invalid_session"),
        ("usage admin token", "usage", USAGE, ADMIN, 401, "invalid_session"),
        ("usage unknown route mode", "usage", {**USAGE, "route_mode": "free"}, None, 400, "invalid_request"),
        ("usage missing request id", "usage", {k: v for k, v in USAGE.items() if k != "request_id"}, None, 400, "invalid_request"),
        ("usage request id too long", "usage", {**USAGE, "request_id": "r" * 129}, None, 400, "invalid_request"),
        ("usage NUL in request id", "usage", {**USAGE, "request_id": "r\u0000"}, None, 400, "invalid_request"),
        ("usage NUL in user", "usage", {**USAGE, "external_user_id": "\u0000"}, None, 400, "invalid_request"),
        ("session NUL in user", "session", {"public_app_id": "app_pub_demo", "external_user_id": "a\u0000"}, None, 400, "invalid_request"),
        ("session NUL in app", "session", {"public_app_id": "app\u0000", "external_user_id": "a"}, None, 400, "invalid_request"),
        ("usage empty batch", "usage", {"events": []}, None, 400, "invalid_request"),
        ("usage batch not a list", "usage", {"events": "all"}, None, 400, "invalid_request"),
        ("usage body is a string", "usage", "event", None, 400, "invalid_request"),
        ("usage body not json", "usage", b"\x00\x01", None, 400, "invalid_request"),
        ("usage unknown app", "usage", {**USAGE, "public_app_id": "app_𝔘𝔫𝔦𝔠𝔬𝔡𝔢"}, None, 404, "not_found"),
        ("usage unaffordable", "usage", {**USAGE, "input_tokens": 10**12}, None, 402, "insufficient_balance"),
        ("usage oversized", "usage", {"events": [USAGE] * 20_000}, None, 413, "invalid_request"),
        ("checkout not whole cents", "checkout", {**CHECKOUT, "amount_usd": "5.00500000"}, None, 400, "invalid_request"),
        ("checkout below minimum", "checkout", {**CHECKOUT, "amount_usd": "0.49000000"}, None, 400, "invalid_request"),
        ("checkout javascript url", "checkout", {**CHECKOUT, "success_url": "javascript:alert(1)"}, None, 400, "invalid_request"),
        ("checkout no session", "checkout", CHECKOUT, {"Authorization": ""}, 401, "invalid_session"),
        ("checkout forged session", "checkout", CHECKOUT, {"Authorization": "Bearer mf_sess_" + "A" * 43}, 401, "invalid_session"),
        ("session unknown app", "session", {"public_app_id": "nope", "external_user_id": "x"}, None, 401, "invalid_session"),
        ("session no app key", "session", {"public_app_id": "app_pub_demo", "external_user_id": "x"}, {"Authorization": ""}, 401, "invalid_session"),
        ("session forged app key", "session", {"public_app_id": "app_pub_demo", "external_user_id": "x"}, {"Authorization": "Bearer mf_app_sk_" + "A" * 43}, 401, "invalid_session"),
        ("session empty user", "session", {"public_app_id": "app_pub_demo", "external_user_id": ""}, None, 400, "invalid_request"),
        ("session user 257 chars", "session", {"public_app_id": "app_pub_demo", "external_user_id": "u" * 257}, None, 400, "invalid_request"),
        ("webhook no signature", "webhook", b'{"id":"evt_1"}', {"Stripe-Signature": ""}, 400, "invalid_request"),
        ("webhook bad signature", "webhook", b'{"id":"evt_1"}', {"Stripe-Signature": "t=1,v1=00"}, 400, "invalid_request"),
        ("payout bad uuid", "payout-approve-bad-uuid", {}, None, 400, "invalid_request"),
        ("payout unknown", "payout-approve-unknown", {}, None, 404, "not_found"),
    ]  # fmt: skip
    return rows


def _written(ctx: ServiceContext) -> tuple[int, ...]:
    with ctx.db.read() as conn:
        return tuple(
            int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (ledger_postings, adjustments, usage_events, stripe_topups, audit_log)
        )


@pytest.fixture
def corpus_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_a_corpus_of_bad_inputs_gets_the_spec_error_and_writes_nothing(
    corpus_client: TestClient, session_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    client = corpus_client
    wallet = seeded.end_user_wallet_id
    endpoints = {
        "adjust": (f"/v1/admin/wallets/{wallet}/adjustments", ADMIN),
        "adjust-bad-uuid": ("/v1/admin/wallets/not-a-uuid/adjustments", ADMIN),
        "adjust-unknown-wallet": ("/v1/admin/wallets/00000000-0000-4000-8000-000000000000/adjustments", ADMIN),
        "usage": ("/v1/usage/events", GATEWAY),
        "checkout": ("/v1/user/stripe/checkout-sessions", session_headers),
        "session": ("/v1/sessions", APP_KEY_HEADERS),
        "webhook": ("/v1/stripe/webhook", {}),
        "payout-approve-bad-uuid": ("/v1/admin/payouts/123/approve", ADMIN),
        "payout-approve-unknown": ("/v1/admin/payouts/00000000-0000-4000-8000-000000000000/approve", ADMIN),
    }
    before = _written(ctx)
    mismatches = []
    rows = corpus()
    for name, endpoint, body, override, status, code in rows:
        path, headers = endpoints[endpoint]
        headers = {**headers, **(override or {}), "x-request-id": "corpus-case"}
        headers = {k: v for k, v in headers.items() if v}
        if isinstance(body, bytes):
            response = client.post(path, content=body, headers={**headers, "Content-Type": "application/json"})
        else:
            response = client.post(
                path, content=json.dumps(body), headers={**headers, "Content-Type": "application/json"}
            )
        try:
            error = response.json()["error"]
            ok = (
                response.status_code == status
                and error["code"] == code
                and error["request_id"] == "corpus-case"
                and isinstance(error["message"], str)
                and error["message"]
                and "Traceback" not in response.text
            )
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            mismatches.append((name, response.status_code, response.text[:200]))
    # A page cursor beyond a BIGINT: 400, not an overflow deep in the driver (was a 500 on SQLite).
    huge_cursor = client.get(f"/v1/admin/audit-log?before_id={2**64}", headers=ADMIN)
    assert huge_cursor.status_code == 400 and huge_cursor.json()["error"]["code"] == "invalid_request"
    # A NUL in a query filter: PostgreSQL refuses the value (DataError → 400), SQLite finds nothing.
    nul_query = client.get("/v1/admin/audit-log?resource_id=a%00b", headers=ADMIN)
    expected_status = 200 if ctx.db.is_sqlite else 400
    assert nul_query.status_code == expected_status, nul_query.text
    if expected_status == 400:
        assert nul_query.json()["error"]["code"] == "invalid_request"
    assert mismatches == [], "\n".join(map(str, mismatches))
    assert _written(ctx) == before, "a refused request wrote something"
    assert invariant_violations(ctx) == []
    print(f"\nbad-input corpus: {len(rows)} cases, all answered with the SPEC §3 error, nothing written")


@given(raw=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
@settings(max_examples=scaled(60, 1000), deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_random_bytes_to_the_write_endpoints_never_5xx(raw: bytes) -> None:
    # Built once per test run on an in-memory app: random bytes never reach a valid write.
    client = _random_bytes_client()
    for path, headers in _RANDOM_TARGETS:
        response = client.post(path, content=raw, headers={**headers, "Content-Type": "application/json"})
        assert response.status_code in (200, 400, 401, 404, 409), (path, response.status_code, response.text[:200])
        if response.status_code >= 400:
            assert response.json()["error"]["code"]


_RANDOM_TARGETS = [
    ("/v1/usage/events", GATEWAY),
    ("/v1/admin/wallets/00000000-0000-4000-8000-000000000000/adjustments", ADMIN),
    ("/v1/sessions", {}),
    ("/v1/stripe/webhook", {}),
    ("/v1/admin/payouts/run-mock", ADMIN),
]
_CLIENT: list[TestClient] = []


def _random_bytes_client() -> TestClient:
    if not _CLIENT:
        import tempfile

        from modelfaucet.adapters.db import migrate
        from modelfaucet.services.seed import seed_demo_data

        path = tempfile.mkdtemp(prefix="mf-fuzz-") + "/fuzz.sqlite3"
        database = Database.from_url(f"sqlite:///{path}")
        migrate.upgrade(database.engine)
        settings_ = Settings(
            database_url=f"sqlite:///{path}",
            admin_token=ADMIN_TOKEN,
            gateway_service_token=GATEWAY_TOKEN,
            stripe_webhook_secret="whsec_fuzz_not_a_secret",
            rate_limit_per_minute=0,
        )
        seed_demo_data(ServiceContext(db=database, settings=settings_))
        _CLIENT.append(TestClient(create_app(settings_, db=database), raise_server_exceptions=False))
    return _CLIENT[0]
