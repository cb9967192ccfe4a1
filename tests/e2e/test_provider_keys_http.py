"""Provider keys over HTTP: admin platform/developer keys and end-user BYOK keys."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from modelfaucet.adapters import netpolicy
from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import audit_log, provider_keys
from modelfaucet.adapters.netpolicy import IPAddress
from modelfaucet.adapters.secretbox import generate_key
from modelfaucet.config import Settings
from modelfaucet.http.app import create_app
from modelfaucet.services.seed import SeedResult
from tests.conftest import with_settings

OPENAI_KEY = "sk-FAKEproj0123456789abcdefWXYZ"
BYOK_KEY = "sk-ant-FAKE-byok-0123456789abcdefghijklmnopqrstuv"


@pytest.fixture(autouse=True)
def stub_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"api.openai.com": "104.18.7.192", "api.anthropic.com": "160.79.104.10", "lan.example": "10.0.0.8"}

    def resolve(host: str, port: int = 443) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            pass
        if host not in answers:
            raise OSError("no such name")
        return [ipaddress.ip_address(answers[host])]

    monkeypatch.setattr(netpolicy, "resolve", resolve)


@pytest.fixture
def api(database: Database, settings: Settings) -> Iterator[TestClient]:
    keyed = with_settings(settings, secret_key=generate_key())
    with TestClient(create_app(keyed, db=database), raise_server_exceptions=False) as client:
        yield client


def session_headers(api: TestClient, seeded: SeedResult, external_user_id: str = "demo-user-1") -> dict[str, str]:
    response = api.post(
        "/v1/sessions",
        headers={"Authorization": f"Bearer {seeded.app_secret_key}"},
        json={"public_app_id": seeded.public_app_id, "external_user_id": external_user_id},
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['session_token']}"}


def count(database: Database, table: object) -> int:
    with database.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_an_operator_adds_lists_and_deletes_a_platform_key(
    api: TestClient, admin_headers: dict[str, str], database: Database
) -> None:
    created = api.post(
        "/v1/admin/provider-keys",
        headers=admin_headers,
        json={
            "owner_scope": "platform",
            "provider": "openai",
            "api_key": OPENAI_KEY,
            "base_url": "https://api.openai.com/v1",
            "models_allowed": ["gpt-4o-mini"],
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["masked_key"] == "sk-…WXYZ"
    assert (body["owner_scope"], body["owner_id"]) == ("platform", "platform")
    assert OPENAI_KEY not in created.text
    listed = api.get("/v1/admin/provider-keys", headers=admin_headers, params={"owner_scope": "platform"})
    assert [item["id"] for item in listed.json()["items"]] == [body["id"]]
    assert OPENAI_KEY not in listed.text
    deleted = api.delete(f"/v1/admin/provider-keys/{body['id']}", headers=admin_headers)
    assert deleted.json() == {"id": body["id"], "deleted": True}
    assert count(database, provider_keys) == 0
    assert api.delete(f"/v1/admin/provider-keys/{body['id']}", headers=admin_headers).status_code == 404


def test_an_operator_adds_a_developer_key(api: TestClient, admin_headers: dict[str, str], seeded: SeedResult) -> None:
    created = api.post(
        "/v1/admin/provider-keys",
        headers=admin_headers,
        json={"owner_scope": "developer", "owner_id": seeded.developer_id, "provider": "openai", "api_key": OPENAI_KEY},
    )
    assert created.status_code == 201, created.text
    assert created.json()["owner_id"] == seeded.developer_id


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"owner_scope": "platform", "provider": "openai", "api_key": "sk-FAKE 0123456789abcdefghij"}, 400, "api_key"),
        ({"owner_scope": "platform", "provider": "nonesuch", "api_key": OPENAI_KEY}, 400, "provider"),
        (
            {
                "owner_scope": "platform",
                "provider": "openai",
                "api_key": OPENAI_KEY,
                "base_url": "http://127.0.0.1:8080",
            },
            400,
            "base_url",
        ),
        (
            {
                "owner_scope": "platform",
                "provider": "openai",
                "api_key": OPENAI_KEY,
                "base_url": "https://lan.example/",
            },
            400,
            "base_url",
        ),
        (
            {"owner_scope": "platform", "provider": "openai", "api_key": OPENAI_KEY, "base_url": "file:///etc/passwd"},
            400,
            "base_url",
        ),
        (
            {"owner_scope": "developer", "owner_id": "not-a-uuid", "provider": "openai", "api_key": OPENAI_KEY},
            400,
            "owner_id",
        ),
        (
            {
                "owner_scope": "developer",
                "owner_id": "00000000-0000-0000-0000-000000000000",
                "provider": "openai",
                "api_key": OPENAI_KEY,
            },
            404,
            "owner_id",
        ),
        ({"owner_scope": "end_user", "owner_id": "x", "provider": "openai", "api_key": OPENAI_KEY}, 400, "owner_scope"),
        ({"owner_scope": "platform", "provider": "openai", "api_key": OPENAI_KEY, "extra": 1}, 400, "extra"),
        ({"owner_scope": "platform", "provider": "openai", "api_key": "sk-" + "A" * 600}, 400, "api_key"),
    ],
)
def test_a_refused_admin_key_writes_nothing_and_never_echoes_the_key(
    *,
    api: TestClient,
    admin_headers: dict[str, str],
    database: Database,
    body: dict[str, object],
    status: int,
    field: str,
) -> None:
    response = api.post("/v1/admin/provider-keys", headers=admin_headers, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert field in response.text
    assert error["request_id"] == response.headers["x-request-id"]
    assert str(body["api_key"]) not in response.text
    assert str(body["api_key"])[3:20] not in response.text
    assert count(database, provider_keys) == 0
    assert count(database, audit_log) == 0


def test_admin_routes_need_the_admin_token(api: TestClient, seeded: SeedResult) -> None:
    user = session_headers(api, seeded)
    for headers in ({}, user, {"Authorization": "Bearer wrong"}):
        assert api.get("/v1/admin/provider-keys", headers=headers).status_code == 401
        response = api.post(
            "/v1/admin/provider-keys",
            headers=headers,
            json={"owner_scope": "platform", "provider": "openai", "api_key": OPENAI_KEY},
        )
        assert response.status_code == 401


def test_an_end_user_manages_their_own_byok_keys(api: TestClient, seeded: SeedResult, database: Database) -> None:
    alice = session_headers(api, seeded, "byok-alice")
    bob = session_headers(api, seeded, "byok-bob")
    created = api.post(
        "/v1/user/provider-keys",
        headers=alice,
        json={"provider": "anthropic", "api_key": BYOK_KEY, "base_url": "https://api.anthropic.com"},
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["owner_scope"] == "end_user"
    assert key["masked_key"] == "sk-ant-…stuv"
    assert BYOK_KEY not in created.text
    assert [k["id"] for k in api.get("/v1/user/provider-keys", headers=alice).json()["items"]] == [key["id"]]
    assert api.get("/v1/user/provider-keys", headers=bob).json()["items"] == []
    stolen = api.delete(f"/v1/user/provider-keys/{key['id']}", headers=bob)
    assert stolen.status_code == 403
    assert count(database, provider_keys) == 1
    assert api.delete(f"/v1/user/provider-keys/{key['id']}", headers=alice).status_code == 200
    assert count(database, provider_keys) == 0
    with database.read() as conn:
        actions = [r.action for r in conn.execute(select(audit_log.c.action).order_by(audit_log.c.id))]
    assert actions[-2:] == ["provider_key.create", "provider_key.delete"]


def test_user_routes_need_a_session(api: TestClient, admin_headers: dict[str, str]) -> None:
    assert api.get("/v1/user/provider-keys").status_code == 401
    assert api.get("/v1/user/provider-keys", headers=admin_headers).status_code == 401
    response = api.post("/v1/user/provider-keys", json={"provider": "openai", "api_key": OPENAI_KEY})
    assert response.status_code == 401
    assert OPENAI_KEY not in response.text


def test_an_end_user_cannot_point_a_byok_key_at_the_lan(
    api: TestClient, seeded: SeedResult, database: Database
) -> None:
    user = session_headers(api, seeded)
    before = count(database, audit_log)
    for url in (
        "http://localhost:11434/v1",
        "http://169.254.169.254/",
        "http://[::ffff:10.0.0.1]/",
        "http://2130706433/",
    ):
        response = api.post(
            "/v1/user/provider-keys", headers=user, json={"provider": "anthropic", "api_key": BYOK_KEY, "base_url": url}
        )
        assert response.status_code == 400, url
        assert response.json()["error"]["details"]["field"] == "base_url"
    assert count(database, provider_keys) == 0
    assert count(database, audit_log) == before


def test_the_openapi_document_marks_api_key_write_only(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    props = schema["components"]["schemas"]["UserProviderKeyIn"]["properties"]
    assert props["api_key"].get("writeOnly") is True
    out = schema["components"]["schemas"]["ProviderKeyOut"]["properties"]
    assert "api_key" not in out and "ciphertext" not in out
