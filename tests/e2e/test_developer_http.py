"""Developer access over HTTP (SPEC §17), on SQLite and PostgreSQL.

Tokens: issued once by an operator, listed without secrets, stored as hashes, revoked
(then 401), audited. Isolation: every ``/v1/developer/*`` route is walked with a second
developer's token — someone else's payout, app or provider key answers 404 exactly like
an unknown id, and no response carries the first developer's data. A developer token
opens no admin, gateway or end-user route.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import audit_log, developer_tokens, provider_keys
from modelfaucet.adapters.secretbox import generate_key
from modelfaucet.config import Settings
from modelfaucet.domain.ledger import OwnerScope, Posting, SystemAccount, Transaction
from modelfaucet.http.app import create_app
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.seed import SeedResult
from tests.conftest import ADMIN_TOKEN, GATEWAY_TOKEN, with_settings

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GATEWAY = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
UNKNOWN = "00000000-0000-4000-8000-00000000abcd"
MOCK_KEY = "mock-developer-key-0123456789"


@pytest.fixture
def api(database: Database, settings: Settings) -> Iterator[TestClient]:
    # Sub-cent payouts on purpose: the developer's money here is a few usage events' revenue.
    keyed = with_settings(settings, secret_key=generate_key(), payout_minimum_units=1)
    with TestClient(create_app(keyed, db=database), raise_server_exceptions=False) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def issue(api: TestClient, developer_id: str, name: str = "ci-export") -> dict[str, Any]:
    response = api.post(f"/v1/admin/developers/{developer_id}/tokens", headers=ADMIN, json={"name": name})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def usage(api: TestClient, request_id: str) -> dict[str, Any]:
    response = api.post(
        "/v1/usage/events",
        headers=GATEWAY,
        json={
            "request_id": request_id,
            "public_app_id": "app_pub_demo",
            "external_user_id": "demo-user-1",
            "feature_key": "customer_reply",
            "route_mode": "platform",
            "provider": "mock",
            "model": "mock-small",
            "input_tokens": 1_200_000,
            "output_tokens": 300_000,
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# --- tokens -------------------------------------------------------------------------------


def test_a_token_is_shown_once_opens_the_developer_routes_and_is_stored_as_a_hash(
    api: TestClient, seeded: SeedResult, database: Database
) -> None:
    issued = issue(api, seeded.developer_id)
    assert set(issued) == {"id", "name", "token", "created_at"}
    assert issued["token"].startswith("mf_dev_") and len(issued["token"]) >= 50
    me = api.get("/v1/developer/me", headers=bearer(issued["token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == seeded.developer_id
    assert [app["public_app_id"] for app in me.json()["apps"]] == ["app_pub_demo"]
    assert [f["feature_key"] for f in me.json()["apps"][0]["features"]] == ["customer_reply"]
    with database.read() as conn:
        rows = [dict(row._mapping) for row in conn.execute(select(developer_tokens))]
    assert [row["token_hash"] for row in rows] == [hashlib.sha256(issued["token"].encode()).hexdigest()]
    assert issued["token"][7:] not in repr(rows)


def test_the_list_shows_names_and_last_use_never_a_token(api: TestClient, seeded: SeedResult) -> None:
    first, second = issue(api, seeded.developer_id, "ci"), issue(api, seeded.developer_id, "laptop")
    api.get("/v1/developer/balance", headers=bearer(first["token"]))
    listed = api.get(f"/v1/admin/developers/{seeded.developer_id}/tokens", headers=ADMIN)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [(item["name"], item["last_used_at"] is not None) for item in items] == [("ci", True), ("laptop", False)]
    assert all(set(item) == {"id", "name", "created_at", "last_used_at", "revoked_at"} for item in items)
    assert first["token"] not in listed.text and second["token"] not in listed.text


def test_a_revoked_token_is_refused_at_the_next_request_and_the_others_keep_working(
    api: TestClient, seeded: SeedResult, database: Database
) -> None:
    kept, revoked = issue(api, seeded.developer_id, "kept"), issue(api, seeded.developer_id, "revoked")
    assert api.get("/v1/developer/me", headers=bearer(revoked["token"])).status_code == 200
    deleted = api.delete(f"/v1/admin/developers/{seeded.developer_id}/tokens/{revoked['id']}", headers=ADMIN)
    assert (deleted.status_code, deleted.content) == (204, b"")
    refused = api.get("/v1/developer/me", headers=bearer(revoked["token"]))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_session"
    assert api.get("/v1/developer/me", headers=bearer(kept["token"])).status_code == 200
    again = api.delete(f"/v1/admin/developers/{seeded.developer_id}/tokens/{revoked['id']}", headers=ADMIN)
    assert again.status_code == 204
    with database.read() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.resource_id)
            .where(audit_log.c.resource_type == "developer_token")
            .order_by(audit_log.c.id)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("admin", "developer_token.create", kept["id"]),
        ("admin", "developer_token.create", revoked["id"]),
        ("admin", "developer_token.revoke", revoked["id"]),
    ]


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("POST", "/v1/admin/developers/{dev}/tokens", {}, 401),
        ("GET", "/v1/admin/developers/{dev}/tokens", {}, 401),
        ("DELETE", f"/v1/admin/developers/{{dev}}/tokens/{UNKNOWN}", {}, 401),
        ("POST", f"/v1/admin/developers/{UNKNOWN}/tokens", ADMIN, 404),
        ("GET", f"/v1/admin/developers/{UNKNOWN}/tokens", ADMIN, 404),
        ("DELETE", f"/v1/admin/developers/{{dev}}/tokens/{UNKNOWN}", ADMIN, 404),
        ("GET", "/v1/admin/developers/not-a-uuid/tokens", ADMIN, 400),
        ("DELETE", "/v1/admin/developers/{dev}/tokens/not-a-uuid", ADMIN, 400),
    ],
)
def test_token_administration_needs_an_operator_and_a_real_developer(  # noqa: PLR0917
    api: TestClient, seeded: SeedResult, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    response = api.request(method, path.format(dev=seeded.developer_id), headers=headers, json={"name": "x"})
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer ",
        f"Bearer {ADMIN_TOKEN}",
        f"Bearer {GATEWAY_TOKEN}",
        "Bearer mf_dev_" + "A" * 43,
        "Basic bWZfZGV2Og==",
    ],
)
def test_only_a_live_developer_token_opens_a_developer_route(
    api: TestClient, seeded: SeedResult, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = api.get("/v1/developer/balance", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "A valid developer token is required."


def test_an_end_user_session_does_not_open_a_developer_route(api: TestClient, seeded: SeedResult) -> None:
    session = api.post(
        "/v1/sessions",
        headers=bearer(seeded.app_secret_key),
        json={"public_app_id": "app_pub_demo", "external_user_id": "demo-user-1"},
    ).json()["session_token"]
    assert api.get("/v1/developer/me", headers=bearer(session)).status_code == 401


# --- isolation: a second developer walks every developer route -----------------------------


@dataclass
class TwoDevelopers:
    first_token: str
    second_token: str
    first: dict[str, str]  # what belongs to the first developer, by name
    unknown: dict[str, str]  # ids of the same kind that belong to nobody


@pytest.fixture
def two(api: TestClient, seeded: SeedResult) -> TwoDevelopers:
    first_token = issue(api, seeded.developer_id)["token"]
    events = [usage(api, f"req-first-{i}") for i in range(3)]
    paid = api.post("/v1/admin/payouts/run-mock", headers=ADMIN, json={"threshold_usd": "0.00000001"})
    assert paid.status_code == 200, paid.text
    (payout,) = paid.json()["items"]
    key = api.post(
        "/v1/developer/provider-keys", headers=bearer(first_token), json={"provider": "mock", "api_key": MOCK_KEY}
    )
    assert key.status_code == 201, key.text
    second = api.post("/v1/admin/developers", headers=ADMIN, json={"name": "Second", "email": "second@example.com"})
    assert second.status_code == 201, second.text
    return TwoDevelopers(
        first_token=first_token,
        second_token=issue(api, second.json()["id"])["token"],
        first={
            "developer_id": seeded.developer_id,
            "wallet_id": seeded.developer_wallet_id,
            "app_id": seeded.app_id,
            "public_app_id": seeded.public_app_id,
            "payout_id": payout["id"],
            "key_id": key.json()["id"],
            "email": "dev@example.com",
            **{f"transaction_{i}": event["transaction_id"] for i, event in enumerate(events)},
            **{f"request_{i}": event["request_id"] for i, event in enumerate(events)},
        },
        unknown={"payout_id": UNKNOWN, "key_id": UNKNOWN, "public_app_id": "app_pub_nobody"},
    )


def operations(api: TestClient) -> list[tuple[str, str]]:
    """Every (METHOD, path template) the OpenAPI document lists."""
    paths = api.get("/openapi.json").json()["paths"]
    return [(method.upper(), path) for path, item in paths.items() for method in item]


def refusal(response: Response, ident: str) -> tuple[int, str]:
    """The status and error body, the echoed id and the request id taken out."""
    error = dict(response.json()["error"])
    error.pop("request_id")
    return response.status_code, json.dumps(error, sort_keys=True).replace(ident, "<id>")


# Every developer route, and what the second developer sends to it: {"own"} paths read
# their own data; "{payout_id}"-style paths and params name the first developer's ids.
WALK: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/developer/me", None),
    ("GET", "/v1/developer/balance", None),
    ("GET", "/v1/developer/earnings", None),
    ("GET", "/v1/developer/earnings?group_by=app&from=2000-01-01", None),
    ("GET", "/v1/developer/earnings?public_app_id={public_app_id}", None),
    ("GET", "/v1/developer/payouts", None),
    ("GET", "/v1/developer/payouts/{payout_id}", None),
    ("GET", "/v1/developer/statement?from=2000-01-01", None),
    ("GET", "/v1/developer/statement.csv?from=2000-01-01", None),
    ("GET", "/v1/developer/provider-keys", None),
    ("POST", "/v1/developer/provider-keys", {"provider": "mock", "api_key": "mock-second-key-0123456789"}),
    ("DELETE", "/v1/developer/provider-keys/{key_id}", None),
]


def test_the_walk_covers_every_developer_route(api: TestClient) -> None:
    routes = {(method, path) for method, path in operations(api) if path.startswith("/v1/developer/")}
    walked = {(method, re.sub(r"\?.*", "", path)) for method, path, _ in WALK}
    assert walked == routes


@pytest.mark.parametrize(("method", "path", "body"), WALK, ids=[f"{m} {p}" for m, p, _ in WALK])
def test_a_second_developer_never_sees_the_first_ones_data(
    api: TestClient, two: TwoDevelopers, method: str, path: str, body: dict[str, Any] | None
) -> None:
    names = re.findall(r"{(\w+)}", path)
    response = api.request(method, path.format(**two.first), headers=bearer(two.second_token), json=body)
    if names:
        (name,) = names
        unknown = api.request(method, path.format(**two.unknown), headers=bearer(two.second_token), json=body)
        assert refusal(response, two.first[name]) == refusal(unknown, two.unknown[name])
        assert response.status_code == 404
    else:
        assert response.status_code in {200, 201}, response.text
    sent = path.format(**two.first)
    for what, value in two.first.items():
        if value not in sent:  # a refusal may echo the id it was asked for, nothing else
            assert value not in response.text, f"{method} {path} shows the first developer's {what}"
    # And the first developer's things are untouched and still theirs.
    mine = api.get("/v1/developer/provider-keys", headers=bearer(two.first_token)).json()["items"]
    assert [key["id"] for key in mine] == [two.first["key_id"]]
    assert (
        api.get(f"/v1/developer/payouts/{two.first['payout_id']}", headers=bearer(two.first_token)).status_code == 200
    )


def test_the_first_developer_sees_their_own_money(api: TestClient, two: TwoDevelopers) -> None:
    mine = bearer(two.first_token)
    balance = api.get("/v1/developer/balance", headers=mine).json()
    assert balance["wallet_id"] == two.first["wallet_id"]
    assert balance["earned_usd"] == balance["balance_usd"] == balance["reserved_usd"] == balance["pending_payout_usd"]
    assert balance["available_usd"] == balance["paid_out_usd"] == "0.00000000"
    earnings = api.get("/v1/developer/earnings?group_by=app", headers=mine).json()
    assert [(item["key"], item["requests"]) for item in earnings["items"]] == [("app_pub_demo", 3)]
    assert earnings["totals"]["channel_revenue_usd"] == balance["earned_usd"]
    payout = api.get(f"/v1/developer/payouts/{two.first['payout_id']}", headers=mine).json()
    assert [(h["from_status"], h["to_status"]) for h in payout["history"]] == [(None, "pending")]
    assert "operator_note" not in payout and "created_by" not in payout
    statement = api.get("/v1/developer/statement?from=2000-01-01", headers=mine).json()
    assert statement["closing_balance_usd"] == balance["balance_usd"]
    assert [e["reference"] for e in statement["entries"]] == [f"usage_event:req-first-{i}" for i in range(3)]


def test_operator_notes_never_reach_the_developer(api: TestClient, two: TwoDevelopers) -> None:
    note = "internal: checked KYC by phone"
    approved = api.post(
        f"/v1/admin/payouts/{two.first['payout_id']}/approve", headers=ADMIN, json={"operator_note": note}
    )
    assert approved.status_code == 200, approved.text
    detail = api.get(f"/v1/developer/payouts/{two.first['payout_id']}", headers=bearer(two.first_token))
    assert [(h["from_status"], h["to_status"]) for h in detail.json()["history"]] == [
        (None, "pending"),
        ("pending", "processing"),
    ]
    assert note not in detail.text and "admin" not in detail.text
    assert note not in api.get("/v1/developer/payouts", headers=bearer(two.first_token)).text


def test_a_developer_key_is_deleted_only_by_its_developer(
    api: TestClient, two: TwoDevelopers, database: Database
) -> None:
    key_id = two.first["key_id"]
    assert api.delete(f"/v1/developer/provider-keys/{key_id}", headers=bearer(two.second_token)).status_code == 404
    with database.read() as conn:
        assert (
            conn.execute(select(provider_keys.c.owner_id).where(provider_keys.c.id == key_id)).scalar_one()
            == (two.first["developer_id"])
        )
    deleted = api.delete(f"/v1/developer/provider-keys/{key_id}", headers=bearer(two.first_token))
    assert deleted.json() == {"id": key_id, "deleted": True}
    with database.read() as conn:
        actors = conn.execute(
            select(audit_log.c.actor).where(audit_log.c.resource_id == key_id).order_by(audit_log.c.id)
        ).scalars()
        assert list(actors) == [f"developer:{two.first['developer_id']}"] * 2


# --- a developer token opens nothing else -----------------------------------------------------

PUBLIC = {"/health", "/ready", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
# The Stripe webhook is authenticated by its signature, never by a bearer token.
SIGNED = {"/v1/stripe/webhook"}
# Routes whose credential is checked after the body: send a valid body so only the token decides.
BODIES = {"/v1/sessions": {"public_app_id": "app_pub_demo", "external_user_id": "demo-user-1"}}


def test_a_developer_token_opens_no_admin_gateway_or_end_user_route(api: TestClient, two: TwoDevelopers) -> None:
    walked = 0
    for method, route in operations(api):
        if route in PUBLIC | SIGNED or route.startswith("/v1/developer/"):
            continue
        path = re.sub(r"{(\w+)}", lambda m: two.first.get(m.group(1), UNKNOWN), route)
        response = api.request(method, path, headers=bearer(two.first_token), json=BODIES.get(route))
        assert response.status_code == 401, f"{method} {route}: {response.status_code} {response.text[:200]}"
        walked += 1
    assert walked >= 30


def test_the_openapi_document_names_the_developer_bearer_scheme(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["DeveloperToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    developer_operations = [
        operation
        for path, item in document["paths"].items()
        if path.startswith("/v1/developer/")
        for operation in item.values()
    ]
    assert len(developer_operations) == 10
    assert all(operation["security"] == [{"DeveloperToken": []}] for operation in developer_operations)
    for path in ("/v1/admin/developers/{developer_id}/tokens", "/v1/admin/wallets/{wallet_id}/balance"):
        assert path in document["paths"]


# --- statements over HTTP ---------------------------------------------------------------------


def test_the_statement_csv_goes_through_the_one_csv_writer(
    api: TestClient, two: TwoDevelopers, ctx: ServiceContext
) -> None:
    hostile = '=HYPERLINK("http://evil.example","pay")'
    with ctx.unit_of_work() as uow:
        contra = uow.ledger.ensure(OwnerScope.SYSTEM, SystemAccount.ADJUSTMENT_CONTRA)
        wallet = two.first["wallet_id"]
        uow.ledger.post(
            Transaction.of(
                "@SUM(1+1)",
                [Posting(wallet, 5, "@SUM(1+1)"), Posting(contra, -5, "@SUM(1+1)")],
                reference_id=hostile,
            )
        )
        uow.commit()
    response = api.get("/v1/developer/statement.csv?from=2000-01-01", headers=bearer(two.first_token))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["posted_at", "transaction_id", "reason", "amount_usd", "balance_after_usd", "reference"]
    assert rows[1][2] == "opening_balance" and rows[-1][2] == "closing_balance"
    (last,) = [row for row in rows if row[2] == "'@SUM(1+1)"]
    assert last[5] == "'" + hostile
    amounts = [int(row[3].replace(".", "")) for row in rows[1:-1] if row[3]]
    assert int(rows[1][4].replace(".", "")) + sum(amounts) == int(rows[-1][4].replace(".", ""))


def test_an_end_user_and_an_operator_read_the_same_statement(
    api: TestClient, two: TwoDevelopers, seeded: SeedResult
) -> None:
    session = api.post(
        "/v1/sessions",
        headers=bearer(seeded.app_secret_key),
        json={"public_app_id": "app_pub_demo", "external_user_id": "demo-user-1"},
    ).json()["session_token"]
    window = "from=2000-01-01&to=2100-01-01"
    own = api.get(f"/v1/user/statement?{window}", headers=bearer(session))
    admin = api.get(f"/v1/admin/wallets/{seeded.end_user_wallet_id}/statement?{window}", headers=ADMIN)
    assert own.status_code == admin.status_code == 200
    assert own.json() == admin.json()
    body = own.json()
    assert body["wallet_id"] == seeded.end_user_wallet_id
    assert [e["reason"] for e in body["entries"]] == ["seed_opening_balance"] + ["usage_retail_price"] * 3
    assert body["opening_balance_usd"] == "0.00000000"
    as_of = api.get(f"/v1/admin/wallets/{seeded.end_user_wallet_id}/balance?as_of=2100-01-01", headers=ADMIN)
    assert as_of.json()["balance_usd"] == body["closing_balance_usd"]
    assert api.get(f"/v1/user/statement.csv?{window}", headers=bearer(session)).status_code == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/v1/admin/wallets/{UNKNOWN}/statement", 404),
        (f"/v1/admin/wallets/{UNKNOWN}/statement.csv", 404),
        (f"/v1/admin/wallets/{UNKNOWN}/balance", 404),
        ("/v1/admin/wallets/not-a-uuid/balance", 400),
        ("/v1/admin/wallets/{wallet}/balance?as_of=yesterday", 400),
        ("/v1/admin/wallets/{wallet}/statement?from=2030-01-02&to=2030-01-01", 400),
        ("/v1/admin/wallets/{wallet}/statement.csv?to=not-a-time", 400),
    ],
)
def test_a_bad_statement_request_is_an_ordinary_json_error(
    api: TestClient, seeded: SeedResult, path: str, status: int
) -> None:
    response = api.get(path.format(wallet=seeded.end_user_wallet_id), headers=ADMIN)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == ("not_found" if status == 404 else "invalid_request")
