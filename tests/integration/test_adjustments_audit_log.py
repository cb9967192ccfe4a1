"""GET /v1/admin/audit-log: the trail of adjustments and payout transitions, filtered and paged."""

from __future__ import annotations

from fastapi.testclient import TestClient

from modelfaucet.services.context import ServiceContext
from modelfaucet.services.seed import SeedResult

AUDIT = "/v1/admin/audit-log"


def make_adjustments(client: TestClient, headers: dict[str, str], wallet_id: str, count: int) -> list[str]:
    ids = []
    for index in range(count):
        response = client.post(
            f"/v1/admin/wallets/{wallet_id}/adjustments",
            json={"kind": "refund", "direction": "credit", "amount_usd": "0.1", "reason": f"refund {index}"},
            headers=headers,
        )
        assert response.status_code == 201
        ids.append(response.json()["id"])
    return ids


def test_the_audit_log_lists_newest_first_with_every_field(
    client: TestClient, admin_headers: dict[str, str], seeded: SeedResult
) -> None:
    [adjustment_id] = make_adjustments(client, admin_headers, seeded.end_user_wallet_id, 1)
    response = client.get(AUDIT, headers=admin_headers)
    assert response.status_code == 200
    newest = response.json()["items"][0]
    assert newest["resource_id"] == adjustment_id
    assert newest["actor"] == "admin"
    assert newest["action"] == "wallet.refund.credit"
    assert newest["amount_usd"] == "0.10000000"
    assert newest["note"] == "refund 0"
    assert newest["after_status"] == "applied"
    assert newest["details"]["wallet_id"] == seeded.end_user_wallet_id
    assert newest["created_at"].endswith("Z")
    # The seed's own opening-balance entry is older and comes last.
    assert response.json()["items"][-1]["action"] == "seed.opening_balance"


def test_the_audit_log_pages_with_before_id(
    client: TestClient, admin_headers: dict[str, str], seeded: SeedResult
) -> None:
    ids = make_adjustments(client, admin_headers, seeded.end_user_wallet_id, 5)
    params: dict[str, str | int] = {"resource_type": "adjustment", "limit": 2}
    seen: list[str] = []
    while True:
        page = client.get(AUDIT, params=params, headers=admin_headers).json()
        seen.extend(item["resource_id"] for item in page["items"])
        if page["next_before_id"] is None:
            break
        params["before_id"] = page["next_before_id"]
    assert seen == list(reversed(ids))


def test_the_audit_log_filters_by_actor_action_resource_and_time(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    make_adjustments(client, admin_headers, seeded.end_user_wallet_id, 2)

    def items(**params: str) -> list[dict[str, object]]:
        response = client.get(AUDIT, params=params, headers=admin_headers)
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    assert len(items(action="wallet.refund.credit")) == 2
    assert len(items(actor="admin")) == 2
    assert len(items(actor="seed")) == 1
    assert items(actor="nobody") == []
    assert len(items(resource_type="wallet")) == 1
    assert len(items(**{"from": "2000-01-01T00:00:00Z", "to": "2999-01-01"})) == 3
    assert items(**{"from": "2999-01-01T00:00:00Z"}) == []


def test_bad_audit_log_queries_are_400_and_the_log_is_admin_only(
    client: TestClient, admin_headers: dict[str, str], seeded: SeedResult
) -> None:
    for params in [{"from": "last week"}, {"limit": "0"}, {"limit": "501"}, {"before_id": "x"}]:
        response = client.get(AUDIT, params=params, headers=admin_headers)
        assert response.status_code == 400, params
        assert response.json()["error"]["code"] == "invalid_request"
    reversed_window = {"from": "2030-01-02", "to": "2030-01-01"}
    assert client.get(AUDIT, params=reversed_window, headers=admin_headers).status_code == 400
    assert client.get(AUDIT).status_code == 401
