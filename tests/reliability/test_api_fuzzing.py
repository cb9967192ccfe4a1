# ruff: noqa: E501 - the bad-input corpus is a table, one case per line
"""API fuzzing: schemathesis against the OpenAPI document, plus a corpus of hostile inputs.

Every operation in the document is called with generated requests (schema-valid bodies,
parameters and headers) under the right valid credentials (admin, gateway or an end-user
session). No response may be a 5xx, every status must be documented for its operation and
every body must match its documented schema. Afterwards the ledger is still balanced.

Then every operation again, each generated request turned hostile in every place a value
can travel — query parameters, path parameters, the ``Idempotency-Key`` and
``Stripe-Signature`` headers (raw latin-1 bytes), and the JSON body — with four classes of
value (issue 18): digits outside ASCII, unpaired UTF-16 surrogates, deep nesting and extreme
dates. Every answer is below 500 and, if an error, the SPEC §3 error body.

Then a table of bad inputs against the main write endpoints, each expecting the SPEC §3
error (status, code, JSON body with the request id) and nothing written.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
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
from modelfaucet.adapters.stripe.signature import sign
from modelfaucet.config import Settings
from modelfaucet.http.app import create_app
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.developer_tokens import issue_developer_token
from modelfaucet.services.seed import SeedResult
from modelfaucet.services.sessions import create_session
from tests.conftest import ADMIN_TOKEN, APP_KEY_HEADERS, GATEWAY_TOKEN, with_settings
from tests.reliability.support import invariant_violations, scaled
from tests.stripe_support import event_bytes

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GATEWAY = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def app(database: Database, settings: Settings, seeded: SeedResult) -> FastAPI:
    # Rate limits off: the fuzzer is one client sending many requests on purpose.
    return create_app(with_settings(settings, rate_limit_per_minute=0), db=database)


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


# --- the hostile classes, against every operation -------------------------------------------

UNICODE_DIGITS = ["²", "12²", "١٢", "１２３", "٣.٥", "𝟗"]
EXTREME_DATES = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "1969-12-31", "２０２５-01-01"]
# No URL or header can carry an unpaired surrogate; a JSON body can, as an escape.
LONE_SURROGATES = ["\udc80", "a\ud800b", "\ud83d", "\ude00\ud83d"]
PARAMETER_VALUES = [*UNICODE_DIGITS, *EXTREME_DATES, "\\udc80", "-1", "9" * 30]
# Raw latin-1 header bytes: ² is the one latin-1 character str.isdigit() calls a digit.
HEADER_VALUES = {
    "Idempotency-Key": [b"\xb2" * 8, "١٢٣٤٥٦٧٨".encode(), b"9999-12-31T23:59:59-23:59", b"key-\xb2\xb2\xb2\xb2-0001"],
    "Stripe-Signature": [
        b"t=\xb2,v1=00",
        b"t=1\xb2,v1=00",
        "t=١٧٠٠٠٠٠٠٠٠,v1=00".encode(),
        b"t=" + b"9" * 40 + b",v1=00",
    ],
}
WEBHOOK_PATH = "/v1/stripe/webhook"
FUZZ_WEBHOOK_SECRET = "whsec_fuzz_not_a_secret"
DEEP_BODIES = [b"[" * 5_000 + b"]" * 5_000, b'{"a":' * 5_000 + b"0" + b"}" * 5_000]


def _replace_leaves(node: Any, text: str | None, number: Any) -> Any:
    """``node`` with every string leaf set to ``text`` and every number leaf to ``number``."""
    if isinstance(node, dict):
        return {key: _replace_leaves(value, text, number) for key, value in node.items()}
    if isinstance(node, list):
        return [_replace_leaves(value, text, number) for value in node]
    if isinstance(node, str) and text is not None:
        return text
    if isinstance(node, int | float) and not isinstance(node, bool) and number is not None:
        return number
    return node


def _string_leaves(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _string_leaves(value, (*at, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _string_leaves(value, (*at, index))
    elif isinstance(node, str):
        yield at


def _with_leaf(node: Any, at: tuple[Any, ...], value: Any) -> Any:
    if not at:
        return value
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[at[0]] = _with_leaf(node[at[0]], at[1:], value)
    return copy


def known_bodies(seeded: SeedResult) -> dict[str, Any]:
    """Valid bodies for the hand-parsed routes: one hostile field among valid ones reaches the
    parsing and storage past the validation that a wholly random body never gets through."""
    return {
        "/v1/usage/events": {**USAGE, "request_id": "hostile-usage-1"},
        "/v1/sessions": {"public_app_id": seeded.public_app_id, "external_user_id": "demo-user-1"},
        WEBHOOK_PATH: json.loads(event_bytes(session_id="cs_test_hostile", event_id="evt_hostile_1")),
    }


def known_path_values(seeded: SeedResult) -> dict[str, str]:
    """Path parameters that name something real, so a hostile query or body gets past the lookup
    (a report's time bounds are parsed only for a report that exists)."""
    return {
        "name": "usage",
        "public_app_id": seeded.public_app_id,
        "wallet_id": seeded.end_user_wallet_id,
        "feature_key": "customer_reply",
        "provider": "mock",
        "model": "mock-small",
    }


def hostile_variants(
    case: Any, known: dict[str, Any]
) -> Iterator[tuple[str, str, dict[str, Any], dict[str, bytes], bytes | None]]:
    """(what, path, query, extra headers, body) for one generated request, one hostile value at a time."""
    operation = case.operation
    generated = {name: str(value) for name, value in (case.path_parameters or {}).items()}
    path_values = {name: known["paths"].get(name, value) for name, value in generated.items()}
    query = dict(case.query or {})
    body = case.body if isinstance(case.body, dict | list) else ({} if operation.body else None)
    body = known["bodies"].get(operation.path, body)
    base_body = None if body is None else json.dumps(body).encode()

    def path(**changes: str) -> str:
        values = {**path_values, **changes}
        return operation.path.format(**{name: quote(value, safe="") for name, value in values.items()})

    for parameter in operation.query:
        for value in PARAMETER_VALUES:
            yield f"query {parameter.name}={value!r}", path(), {**query, parameter.name: value}, {}, base_body
    for name in path_values:
        for value in PARAMETER_VALUES:
            yield f"path {name}={value!r}", path(**{name: value}), query, {}, base_body
    for header, values in HEADER_VALUES.items():
        for raw in values:
            yield f"header {header}={raw!r}", path(), query, {header: raw}, base_body
    if body is None:
        return
    for raw_body in DEEP_BODIES:
        yield f"body nested {raw_body[:8]!r}…", path(), query, {}, raw_body
    for text in LONE_SURROGATES + UNICODE_DIGITS + EXTREME_DATES:
        yield f"body strings {text!r}", path(), query, {}, json.dumps(_replace_leaves(body, text, None)).encode()
    for digits in UNICODE_DIGITS:
        yield f"body numbers {digits!r}", path(), query, {}, json.dumps(_replace_leaves(body, None, digits)).encode()
    for text in LONE_SURROGATES:
        yield f"body key {text!r}", path(), query, {}, json.dumps({text: body}).encode()
    for at in _string_leaves(body):
        for text in (LONE_SURROGATES[0], LONE_SURROGATES[1], UNICODE_DIGITS[2], EXTREME_DATES[0]):
            yield f"body {at}={text!r}", path(), query, {}, json.dumps(_with_leaf(body, at, text)).encode()


async def _send_variants(
    app: FastAPI, case: Any, credentials: dict[str, str], known: dict[str, Any]
) -> list[tuple[str, int, str]]:
    # httpx's ASGI transport hands header bytes over as they are (the TestClient would
    # re-encode a latin-1 0xB2 as UTF-8, and the case it stands for would never arrive).
    answers = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as http:
        for what, path, query, headers, body in hostile_variants(case, known):
            signed: dict[str, str | bytes] = {**credentials, **headers, "Content-Type": "application/json"}
            if path == WEBHOOK_PATH and "Stripe-Signature" not in headers:
                # A valid signature, so the hostile body reaches the webhook's own parsing.
                signed["Stripe-Signature"] = sign(body or b"", FUZZ_WEBHOOK_SECRET, int(time.time()))
            response = await http.request(
                case.operation.method.upper(), path, params=query, headers=signed, content=body
            )
            answers.append((what, response.status_code, response.text[:200]))
            if response.status_code >= 400:
                assert response.json()["error"]["code"], (what, response.text[:200])
    return answers


@pytest.fixture
def signed_app(database: Database, settings: Settings, seeded: SeedResult) -> FastAPI:
    # A webhook secret configured, so the Stripe-Signature header is parsed, not skipped.
    configured = with_settings(settings, rate_limit_per_minute=0, stripe_webhook_secret=FUZZ_WEBHOOK_SECRET)
    return create_app(configured, db=database)


def test_every_operation_answers_hostile_values_anywhere_below_500(
    signed_app: FastAPI,
    session_headers: dict[str, str],
    developer_headers: dict[str, str],
    ctx: ServiceContext,
    seeded: SeedResult,
) -> None:
    app = signed_app
    known = {"paths": known_path_values(seeded), "bodies": known_bodies(seeded)}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    statuses: Counter[int] = Counter()
    server_errors: list[tuple[str, str, int, str]] = []
    with TestClient(app, raise_server_exceptions=False):  # runs the lifespan: the posting engine
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=scaled(1, 10),
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def hostile(case: Any) -> None:
                credentials = credentials_for(case.operation.path, session_headers, developer_headers)
                for what, status, text in asyncio.run(_send_variants(app, case, credentials, known)):
                    statuses[status] += 1
                    if status >= 500:
                        server_errors.append((case.operation.label, what, status, text))

            hostile()
    assert server_errors == [], "\n".join(map(str, server_errors[:20]))
    print(f"\nhostile classes: {len(operations)} operations, {sum(statuses.values())} requests, {dict(statuses)}")
    assert invariant_violations(ctx) == []


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
        ("checkout octal host", "checkout", {**CHECKOUT, "success_url": "http://0177.0.0.1/ok"}, None, 400, "invalid_request"),
        ("checkout full-width host", "checkout", {**CHECKOUT, "success_url": "http://１２７.0.0.1/ok"}, None, 400, "invalid_request"),
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
        # issue 18: digits outside ASCII, unpaired surrogates, deep nesting
        ("usage tokens superscript", "usage", {**USAGE, "input_tokens": "²"}, None, 400, "invalid_request"),
        ("usage tokens arabic-indic", "usage", {**USAGE, "input_tokens": "١٢"}, None, 400, "invalid_request"),
        ("adjust full-width digit key", "adjust", {**ADJUSTMENT, "idempotency_key": "１２３４５６７８"}, None, 400, "invalid_request"),
        ("webhook 40-digit timestamp", "webhook", b'{"id":"evt_1"}', {"Stripe-Signature": "t=" + "9" * 40 + ",v1=00"}, 400, "invalid_request"),
    ]  # fmt: skip
    for endpoint, body, field in [
        ("adjust", ADJUSTMENT, "reason"),
        ("usage", USAGE, "request_id"),
        ("usage batch", {"events": [USAGE, {**USAGE, "request_id": "corpus-2"}]}, None),
        ("checkout", CHECKOUT, "cancel_url"),
        ("session", {"public_app_id": "app_pub_demo", "external_user_id": "demo-user-1"}, "external_user_id"),
        ("webhook", {"id": "evt_corpus", "type": "checkout.session.completed"}, "id"),
    ]:
        target = endpoint.split()[0]
        for lone in ("\udc80", "x\ud800", "\ude00\ud83d"):
            if field is None:
                events = [dict(event) for event in body["events"]]
                events[1]["request_id"] = f"corpus-{lone}"
                bad: Any = {"events": events}
            else:
                bad = {**body, field: lone}
            rows.append((f"{endpoint} lone surrogate {lone!r}", target, bad, None, 400, "invalid_request"))
        for deep in (b"[" * 20_000 + b"]" * 20_000, b'{"a":' * 20_000 + b"1" + b"}" * 20_000):
            rows.append((f"{endpoint} nested {deep[:5]!r}", target, deep, None, 400, "invalid_request"))
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
    # Extreme or non-ASCII time bounds and Unicode digits in query numbers: 400, never a 500.
    for route in ("/v1/admin/reports/usage.csv", "/v1/admin/reports/payouts.csv", "/v1/admin/audit-log"):
        for name, value in [
            ("from", "9999-12-31T23:59:59-23:59"),
            ("to", "0001-01-01T00:00:00+23:59"),
            ("from", "２０２５-01-01"),
            ("to", "1969-12-31"),
        ]:
            bounded = client.get(route, params={name: value}, headers=ADMIN)
            if bounded.status_code != 400 or bounded.json()["error"]["details"] != {"field": name}:
                mismatches.append((f"{route} {name}={value}", bounded.status_code, bounded.text[:200]))
    for query in ("limit=١٢", "limit=²", "before_id=１"):
        digits = client.get(f"/v1/admin/audit-log?{query}", headers=ADMIN)
        if digits.status_code != 400:
            mismatches.append((f"audit-log {query}", digits.status_code, digits.text[:200]))
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
