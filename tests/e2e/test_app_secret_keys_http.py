"""An app's secret keys over HTTP (SPEC §4): issued once by an operator, listed without
secrets, revoked, stored only as hashes, every change audited with the operator's name."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import app_secret_keys, audit_log
from modelfaucet.config import Settings
from modelfaucet.http.app import create_app
from modelfaucet.services.seed import DEMO_APP_SECRET_KEY, SeedResult
from tests.conftest import with_settings

ALICE_TOKEN = "alice-operator-token-0123456789abcdef"
BOB_TOKEN = "bob-operator-token-0123456789abcdefgh"
ALICE = {"Authorization": f"Bearer {ALICE_TOKEN}"}
BOB = {"Authorization": f"Bearer {BOB_TOKEN}"}
KEYS = "/v1/admin/apps/app_pub_demo/secret-keys"


@pytest.fixture
def api(database: Database, settings: Settings) -> Iterator[TestClient]:
    operators = with_settings(settings, operator_tokens={"alice": ALICE_TOKEN, "bob": BOB_TOKEN})
    with TestClient(create_app(operators, db=database), raise_server_exceptions=False) as client:
        yield client


def issue(api: TestClient, name: str = "production backend", headers: dict[str, str] = ALICE) -> dict[str, Any]:
    response = api.post(KEYS, headers=headers, json={"name": name})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def open_session(api: TestClient, secret_key: str) -> int:
    return api.post(
        "/v1/sessions",
        headers={"Authorization": f"Bearer {secret_key}"},
        json={"public_app_id": "app_pub_demo", "external_user_id": "demo-user-1"},
    ).status_code


def stored_keys(database: Database) -> list[dict[str, Any]]:
    with database.read() as conn:
        return [dict(row._mapping) for row in conn.execute(select(app_secret_keys))]


def audit_rows(database: Database) -> list[dict[str, Any]]:
    with database.read() as conn:
        rows = conn.execute(
            select(audit_log).where(audit_log.c.resource_type == "app_secret_key").order_by(audit_log.c.id)
        )
        return [dict(row._mapping) for row in rows]


def test_an_issued_key_is_shown_once_and_opens_sessions(api: TestClient, seeded: SeedResult) -> None:
    issued = issue(api)
    assert set(issued) == {"id", "name", "secret_key", "created_at"}
    assert issued["name"] == "production backend"
    assert issued["secret_key"].startswith("mf_app_sk_") and len(issued["secret_key"]) >= 50
    assert issue(api)["secret_key"] != issued["secret_key"]
    assert open_session(api, issued["secret_key"]) == 201


def test_keys_are_stored_only_as_their_sha256(api: TestClient, seeded: SeedResult, database: Database) -> None:
    issued = issue(api)
    rows = stored_keys(database)
    hashes = {row["key_hash"] for row in rows}
    assert hashlib.sha256(issued["secret_key"].encode()).hexdigest() in hashes
    assert hashlib.sha256(DEMO_APP_SECRET_KEY.encode()).hexdigest() in hashes
    text = repr(rows)
    assert issued["secret_key"] not in text and issued["secret_key"][10:] not in text
    assert DEMO_APP_SECRET_KEY not in text


def test_the_list_never_shows_a_secret(api: TestClient, seeded: SeedResult) -> None:
    issued = issue(api)
    listed = api.get(KEYS, headers=BOB)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [item["name"] for item in items] == ["demo (seed)", "production backend"]
    assert all(set(item) == {"id", "name", "created_at", "last_used_at", "revoked_at"} for item in items)
    assert issued["secret_key"] not in listed.text and issued["secret_key"][10:] not in listed.text
    assert DEMO_APP_SECRET_KEY not in listed.text


def test_a_revoked_key_opens_nothing_and_stays_listed(api: TestClient, seeded: SeedResult) -> None:
    issued = issue(api)
    assert open_session(api, issued["secret_key"]) == 201
    revoked = api.delete(f"{KEYS}/{issued['id']}", headers=BOB)
    assert (revoked.status_code, revoked.content) == (204, b"")
    assert open_session(api, issued["secret_key"]) == 401
    assert open_session(api, DEMO_APP_SECRET_KEY) == 201, "other keys of the app keep working"
    [item] = [item for item in api.get(KEYS, headers=ALICE).json()["items"] if item["id"] == issued["id"]]
    assert item["revoked_at"] and item["last_used_at"]
    assert api.delete(f"{KEYS}/{issued['id']}", headers=BOB).status_code == 204, "revoking twice is harmless"


def test_every_issue_and_revoke_is_audited_with_the_operator_and_never_the_key(
    api: TestClient, seeded: SeedResult, database: Database
) -> None:
    issued = issue(api, headers=ALICE)
    api.delete(f"{KEYS}/{issued['id']}", headers=BOB)
    api.delete(f"{KEYS}/{issued['id']}", headers=BOB)
    rows = audit_rows(database)
    assert [(row["actor"], row["action"], row["resource_id"], row["after_status"]) for row in rows] == [
        ("alice", "app_secret_key.create", issued["id"], "active"),
        ("bob", "app_secret_key.revoke", issued["id"], "revoked"),
    ]
    assert issued["secret_key"] not in repr(rows) and issued["secret_key"][10:] not in repr(rows)


@pytest.mark.parametrize(
    ("case", "method", "path", "headers", "status"),
    [
        ("issue without an operator", "POST", KEYS, {}, 401),
        ("list without an operator", "GET", KEYS, {}, 401),
        ("revoke without an operator", "DELETE", f"{KEYS}/00000000-0000-4000-8000-000000000000", {}, 401),
        ("issue for an unknown app", "POST", "/v1/admin/apps/app_pub_nope/secret-keys", ALICE, 404),
        ("list an unknown app", "GET", "/v1/admin/apps/app_pub_nope/secret-keys", ALICE, 404),
        ("revoke an unknown key", "DELETE", f"{KEYS}/00000000-0000-4000-8000-000000000000", ALICE, 404),
        ("revoke a malformed id", "DELETE", f"{KEYS}/not-a-uuid", ALICE, 400),
    ],
)
def test_key_management_is_refused_for(
    *,
    api: TestClient,
    seeded: SeedResult,
    database: Database,
    case: str,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
) -> None:
    before = stored_keys(database)
    body = {"json": {"name": "x"}} if method == "POST" else {}
    response = api.request(method, path, headers=headers, **body)
    assert response.status_code == status
    assert "error" in response.json()
    assert stored_keys(database) == before and audit_rows(database) == []


def test_a_key_of_one_app_cannot_be_revoked_through_another(
    api: TestClient, seeded: SeedResult, admin_headers: dict[str, str]
) -> None:
    developer = api.post(
        "/v1/admin/developers", headers=ALICE, json={"name": "Other", "email": "other@example.com"}
    ).json()
    api.post(
        "/v1/admin/apps",
        headers=ALICE,
        json={
            "developer_id": developer["id"],
            "public_app_id": "app_pub_other",
            "name": "O",
            "default_revenue_share_bps": 0,
        },
    )
    demo_key_id = api.get(KEYS, headers=ALICE).json()["items"][0]["id"]
    assert api.delete(f"/v1/admin/apps/app_pub_other/secret-keys/{demo_key_id}", headers=ALICE).status_code == 404
    assert open_session(api, DEMO_APP_SECRET_KEY) == 201


def test_the_openapi_document_describes_the_key_routes(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    keys = paths["/v1/admin/apps/{public_app_id}/secret-keys"]
    assert set(keys) == {"get", "post"}
    assert "201" in keys["post"]["responses"]
    revoke = paths["/v1/admin/apps/{public_app_id}/secret-keys/{key_id}"]["delete"]
    assert "204" in revoke["responses"] and "404" in revoke["responses"]
    assert "401" in paths["/v1/sessions"]["post"]["responses"]
