"""The operator's wallet list names each wallet's owner and finds one end user's wallet.

An end user's external id is stored only as a per-app HMAC, so the list never shows it; an
operator finds that user's wallet with ``public_app_id`` + ``external_user_id`` (hashed the
same way and matched), or a developer's wallets with ``developer_email``.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelfaucet.services.seed import SeedResult
from tests.conftest import ADMIN_TOKEN, APP_KEY_HEADERS

URL = "/v1/admin/wallets"


@pytest.fixture
def second_user_wallet(client: TestClient, seeded: SeedResult) -> str:
    """Opens a session for a second end user of the demo app; returns that user's wallet id."""
    body = {"public_app_id": seeded.public_app_id, "external_user_id": "demo-user-2"}
    assert client.post("/v1/sessions", json=body, headers=APP_KEY_HEADERS).status_code == 201
    [wallet] = wallets(client, {"public_app_id": seeded.public_app_id, "external_user_id": "demo-user-2"})
    return str(wallet["id"])


def wallets(client: TestClient, params: dict[str, str]) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    response = client.get(URL, params=params, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_an_end_users_wallet_is_found_by_app_and_external_id_among_several(
    client: TestClient, seeded: SeedResult, second_user_wallet: str
) -> None:
    app = seeded.public_app_id
    [first] = wallets(client, {"public_app_id": app, "external_user_id": seeded.external_user_id})
    assert first["id"] == seeded.end_user_wallet_id
    assert (first["owner_scope"], first["owner_id"]) == ("end_user", seeded.end_user_id)
    assert (first["public_app_id"], first["developer_id"], first["developer_email"]) == (
        app,
        seeded.developer_id,
        "dev@example.com",
    )
    assert second_user_wallet != seeded.end_user_wallet_id
    assert {w["id"] for w in wallets(client, {"public_app_id": app})} == {seeded.end_user_wallet_id, second_user_wallet}
    assert wallets(client, {"public_app_id": app, "external_user_id": "nobody"}) == []
    assert wallets(client, {"public_app_id": "app_pub_missing", "external_user_id": seeded.external_user_id}) == []


def test_a_developers_wallets_are_found_by_email(
    client: TestClient, seeded: SeedResult, second_user_wallet: str
) -> None:
    [own] = wallets(client, {"developer_email": "dev@example.com", "owner_scope": "developer"})
    assert own["id"] == seeded.developer_wallet_id
    assert (own["public_app_id"], own["developer_id"]) == (None, seeded.developer_id)
    everything = {w["id"] for w in wallets(client, {"developer_email": "dev@example.com"})}
    assert everything == {seeded.developer_wallet_id, seeded.end_user_wallet_id, second_user_wallet}
    assert wallets(client, {"developer_email": "someone@example.com"}) == []


def test_system_wallets_have_no_owner_and_no_listing_shows_an_external_id(
    client: TestClient, seeded: SeedResult, second_user_wallet: str
) -> None:
    listed = wallets(client, {})
    platform = next(w for w in listed if w["id"] == seeded.platform_wallet_id)
    assert (platform["public_app_id"], platform["developer_id"], platform["developer_email"]) == (None, None, None)
    text = str(listed)
    assert seeded.external_user_id not in text and "demo-user-2" not in text


def test_an_external_id_without_its_app_is_refused_naming_the_missing_field(
    client: TestClient, admin_headers: dict[str, str], seeded: SeedResult
) -> None:
    response = client.get(URL, params={"external_user_id": seeded.external_user_id}, headers=admin_headers)
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"field": "public_app_id", "reason": "required with external_user_id"}
