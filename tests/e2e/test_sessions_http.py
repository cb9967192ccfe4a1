"""End-user sessions over HTTP (SPEC §4): issue, authenticate, expire, isolate."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import accounts, apps, end_users, user_sessions
from modelfaucet.config import Settings
from modelfaucet.domain.identity import token_hash
from modelfaucet.http.app import create_app
from modelfaucet.services.seed import SeedResult
from tests.conftest import APP_KEY_HEADERS


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def user_client(database: Database, settings: Settings, clock: Clock) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=database, clock=clock), raise_server_exceptions=False) as c:
        yield c


def open_session(client: TestClient, external_user_id: str = "demo-user-1", **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/sessions",
        headers=APP_KEY_HEADERS,
        json={"public_app_id": "app_pub_demo", "external_user_id": external_user_id, **extra},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_session_for_the_demo_user_opens_their_seeded_wallet(user_client: TestClient, seeded: SeedResult) -> None:
    session = open_session(user_client, feature_key="customer_reply")
    assert session["session_token"].startswith("mf_sess_")
    assert session["end_user_id"] == seeded.end_user_id
    assert session["wallet_id"] == seeded.end_user_wallet_id
    assert session["feature_key"] == "customer_reply"

    wallet = user_client.get("/v1/user/wallet", headers=auth(session["session_token"]))
    assert wallet.status_code == 200
    assert wallet.json()["id"] == seeded.end_user_wallet_id
    assert wallet.json()["owner_scope"] == "end_user"
    assert wallet.json()["balance_usd"] == "10.00000000"


def test_the_default_lifetime_is_the_configured_ttl(user_client: TestClient, seeded: SeedResult, clock: Clock) -> None:
    session = open_session(user_client)
    expires = datetime.fromisoformat(session["expires_at"].replace("Z", "+00:00"))
    assert abs((expires - clock.now) - timedelta(seconds=3600)) < timedelta(seconds=1)


def test_a_new_external_user_gets_an_end_user_and_an_empty_wallet_on_first_use(
    user_client: TestClient, seeded: SeedResult, database: Database
) -> None:
    first = open_session(user_client, "brand-new-user")
    again = open_session(user_client, "brand-new-user")
    assert first["end_user_id"] == again["end_user_id"] != seeded.end_user_id
    assert first["wallet_id"] == again["wallet_id"]
    wallet = user_client.get("/v1/user/wallet", headers=auth(first["session_token"])).json()
    assert wallet["balance_usd"] == "0.00000000"
    with database.read() as conn:
        assert conn.execute(select(func.count()).select_from(end_users)).scalar_one() == 2
        assert (
            conn.execute(
                select(func.count()).select_from(accounts).where(accounts.c.owner_id == first["end_user_id"])
            ).scalar_one()
            == 1
        )


def test_tokens_and_external_ids_are_stored_only_as_hashes(
    user_client: TestClient, seeded: SeedResult, database: Database
) -> None:
    session = open_session(user_client, "secret-external-id-42")
    with database.read() as conn:
        stored_sessions = [tuple(str(v) for v in row) for row in conn.execute(select(user_sessions)).all()]
        stored_users = [tuple(str(v) for v in row) for row in conn.execute(select(end_users)).all()]
        hashes = conn.execute(select(user_sessions.c.token_hash)).scalars().all()
    assert token_hash(session["session_token"]) in hashes
    assert not any(session["session_token"] in value for row in stored_sessions for value in row)
    assert not any("secret-external-id-42" in value for row in stored_users for value in row)


def test_two_users_each_see_only_their_own_wallet_and_topups(user_client: TestClient, seeded: SeedResult) -> None:
    alice = open_session(user_client, "alice")
    bob = open_session(user_client, "bob")
    created = user_client.post(
        "/v1/user/stripe/checkout-sessions",
        headers=auth(alice["session_token"]),
        json={"amount_usd": "5.00", "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"},
    )
    assert created.status_code == 201, created.text

    assert user_client.get("/v1/user/wallet", headers=auth(bob["session_token"])).json()["id"] == bob["wallet_id"]
    assert user_client.get("/v1/user/topups", headers=auth(bob["session_token"])).json()["items"] == []
    alice_topups = user_client.get("/v1/user/topups", headers=auth(alice["session_token"])).json()["items"]
    assert [t["checkout_session_id"] for t in alice_topups] == [created.json()["checkout_session_id"]]
    assert alice_topups[0]["wallet_id"] == alice["wallet_id"] != bob["wallet_id"]


def test_an_expired_session_answers_401_expired_session(
    user_client: TestClient, seeded: SeedResult, clock: Clock
) -> None:
    session = open_session(user_client)
    clock.now += timedelta(seconds=3601)
    response = user_client.get("/v1/user/wallet", headers=auth(session["session_token"]))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "expired_session"


@pytest.mark.parametrize(
    ("case", "headers"),
    [
        ("no header", {}),
        ("an unknown token", auth("mf_sess_" + "x" * 43)),
        ("a malformed token", auth("not-a-session")),
        ("the admin scheme", {"Authorization": "Basic abc"}),
    ],
)
def test_user_routes_answer_401_invalid_session_for(
    user_client: TestClient, seeded: SeedResult, case: str, headers: dict[str, str]
) -> None:
    for path in ("/v1/user/wallet", "/v1/user/topups"):
        response = user_client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_session"


@pytest.mark.parametrize(
    ("case", "body", "status"),
    [
        ("an unknown app", {"public_app_id": "app_pub_nope", "external_user_id": "u"}, 401),
        ("an unknown feature", {"public_app_id": "app_pub_demo", "external_user_id": "u", "feature_key": "x"}, 404),
        ("an empty external id", {"public_app_id": "app_pub_demo", "external_user_id": ""}, 400),
        ("a numeric external id", {"public_app_id": "app_pub_demo", "external_user_id": 42}, 400),
        ("an unknown field", {"public_app_id": "app_pub_demo", "external_user_id": "u", "admin": True}, 400),
        ("a missing app id", {"external_user_id": "u"}, 400),
    ],
)
def test_a_session_request_is_refused_and_writes_nothing_for(
    *, user_client: TestClient, seeded: SeedResult, database: Database, case: str, body: dict[str, Any], status: int
) -> None:
    response = user_client.post("/v1/sessions", headers=APP_KEY_HEADERS, json=body)
    assert response.status_code == status
    assert "error" in response.json()
    assert_nothing_written(database)


def assert_nothing_written(database: Database) -> None:
    with database.read() as conn:
        assert conn.execute(select(func.count()).select_from(user_sessions)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(end_users)).scalar_one() == 1


# --- the app's secret key (issue 18 item 5) ----------------------------------------------


def other_app_key(client: TestClient, admin_headers: dict[str, str]) -> str:
    """A second app, with a key of its own."""
    developer = client.post(
        "/v1/admin/developers", headers=admin_headers, json={"name": "Other", "email": "other@example.com"}
    ).json()
    app = client.post(
        "/v1/admin/apps",
        headers=admin_headers,
        json={
            "developer_id": developer["id"],
            "public_app_id": "app_pub_other",
            "name": "Other",
            "default_revenue_share_bps": 4000,
        },
    )
    assert app.status_code == 201, app.text
    issued = client.post("/v1/admin/apps/app_pub_other/secret-keys", headers=admin_headers, json={"name": "backend"})
    assert issued.status_code == 201, issued.text
    return str(issued.json()["secret_key"])


def revoked_demo_key(client: TestClient, admin_headers: dict[str, str]) -> str:
    issued = client.post("/v1/admin/apps/app_pub_demo/secret-keys", headers=admin_headers, json={"name": "old"}).json()
    revoked = client.delete(f"/v1/admin/apps/app_pub_demo/secret-keys/{issued['id']}", headers=admin_headers)
    assert revoked.status_code == 204
    return str(issued["secret_key"])


KEY_CASES = {
    "no header": lambda client, admin: None,
    "an empty bearer": lambda client, admin: "",
    "a malformed key": lambda client, admin: "not-a-key",
    "an unknown key": lambda client, admin: "mf_app_sk_" + "x" * 43,
    "a session token": lambda client, admin: open_session(client)["session_token"],
    "the admin token": lambda client, admin: admin["Authorization"].removeprefix("Bearer "),
    "a revoked key of the app": revoked_demo_key,
    "another app's key": other_app_key,
}


@pytest.mark.parametrize("case", list(KEY_CASES))
def test_without_a_valid_key_of_that_app_a_session_is_refused_401_all_alike(
    user_client: TestClient, seeded: SeedResult, database: Database, admin_headers: dict[str, str], case: str
) -> None:
    presented = KEY_CASES[case](user_client, admin_headers)
    with database.read() as conn:
        sessions_before = conn.execute(select(func.count()).select_from(user_sessions)).scalar_one()
    headers = {} if presented is None else {"Authorization": f"Bearer {presented}"}
    response = user_client.post(
        "/v1/sessions", headers=headers, json={"public_app_id": "app_pub_demo", "external_user_id": "mallory-target"}
    )
    assert response.status_code == 401
    error = response.json()["error"]
    # The same answer whatever was wrong: nothing says whether the key exists, was revoked or is another app's.
    assert (error["code"], error["message"], error["details"]) == (
        "invalid_session",
        "A valid secret key of this app is required.",
        {},
    )
    with database.read() as conn:
        assert conn.execute(select(func.count()).select_from(user_sessions)).scalar_one() == sessions_before
        assert conn.execute(select(func.count()).select_from(end_users)).scalar_one() == 1


def test_a_key_opens_sessions_only_for_its_own_app(
    user_client: TestClient, seeded: SeedResult, admin_headers: dict[str, str]
) -> None:
    other_key = other_app_key(user_client, admin_headers)
    body = {"public_app_id": "app_pub_other", "external_user_id": "u"}
    own = user_client.post("/v1/sessions", headers=auth(other_key), json=body)
    assert own.status_code == 201, own.text
    assert own.json()["public_app_id"] == "app_pub_other"
    demo_key_on_other = user_client.post("/v1/sessions", headers=APP_KEY_HEADERS, json=body)
    assert demo_key_on_other.status_code == 401


def test_a_valid_key_opens_a_session_and_marks_the_key_used(
    user_client: TestClient, seeded: SeedResult, admin_headers: dict[str, str]
) -> None:
    [demo_key] = user_client.get("/v1/admin/apps/app_pub_demo/secret-keys", headers=admin_headers).json()["items"]
    assert demo_key["last_used_at"] is None
    session = open_session(user_client)
    assert session["session_token"].startswith("mf_sess_")
    [used] = user_client.get("/v1/admin/apps/app_pub_demo/secret-keys", headers=admin_headers).json()["items"]
    assert used["last_used_at"] is not None and used["revoked_at"] is None


def test_an_inactive_app_cannot_open_sessions_and_its_sessions_stop_working(
    user_client: TestClient, seeded: SeedResult, database: Database
) -> None:
    session = open_session(user_client)
    with database.transaction() as conn:
        conn.execute(update(apps).values(status="suspended"))
    assert user_client.get("/v1/user/wallet", headers=auth(session["session_token"])).status_code == 401
    response = user_client.post(
        "/v1/sessions", headers=APP_KEY_HEADERS, json={"public_app_id": "app_pub_demo", "external_user_id": "u"}
    )
    assert response.status_code == 404
