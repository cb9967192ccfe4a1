"""Per-IP, per-route rate limits on session creation, checkout creation and the webhook.

The client address is the socket peer; X-Forwarded-For counts only from a configured proxy
(FORWARDED_ALLOW_IPS), shown against the real server as well as the middleware alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import end_users
from modelfaucet.config import Settings
from modelfaucet.http.app import create_app
from modelfaucet.http.ratelimit import LIMITED_ROUTES, RateLimitMiddleware, TokenBuckets, TrustedProxies, client_address
from modelfaucet.services.seed import SeedResult
from tests.conftest import ADMIN_TOKEN, GATEWAY_TOKEN, start_live_server, with_settings


@pytest.fixture
def limited(database: Database, settings: Settings) -> Iterator[TestClient]:
    with TestClient(
        create_app(with_settings(settings, rate_limit_per_minute=3), db=database), raise_server_exceptions=False
    ) as client:
        yield client


def new_session(client: TestClient, seeded: SeedResult, user: str) -> Any:
    return client.post(
        "/v1/sessions",
        headers={"Authorization": f"Bearer {seeded.app_secret_key}"},
        json={"public_app_id": seeded.public_app_id, "external_user_id": user},
    )


def test_session_creation_is_limited_with_429_and_retry_after(
    limited: TestClient, seeded: SeedResult, database: Database
) -> None:
    assert [new_session(limited, seeded, f"u{i}").status_code for i in range(3)] == [201, 201, 201]
    with database.read() as conn:
        users_before = conn.execute(select(func.count()).select_from(end_users)).scalar_one()
    refused = new_session(limited, seeded, "u-over-the-limit")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["request_id"] == refused.headers["x-request-id"]
    assert refused.headers["x-content-type-options"] == "nosniff"
    with database.read() as conn:
        assert conn.execute(select(func.count()).select_from(end_users)).scalar_one() == users_before


@pytest.mark.parametrize("path", ["/v1/sessions", "/v1/user/stripe/checkout-sessions", "/v1/stripe/webhook"])
def test_each_limited_route_answers_429_once_its_bucket_is_empty(limited: TestClient, path: str) -> None:
    statuses = [limited.post(path, content=b"{}").status_code for _ in range(4)]
    assert 429 not in statuses[:3]
    assert statuses[3] == 429
    assert limited.post(path + "/", content=b"{}", follow_redirects=False).status_code == 429


def test_routes_have_separate_buckets_and_other_routes_are_not_limited(
    limited: TestClient, admin_headers: dict[str, str]
) -> None:
    for _ in range(3):
        limited.post("/v1/sessions", content=b"{}")
    assert limited.post("/v1/sessions", content=b"{}").status_code == 429
    assert limited.post("/v1/stripe/webhook", content=b"{}").status_code != 429
    for _ in range(10):
        assert limited.get("/health").status_code == 200
        assert limited.get("/v1/admin/wallets", headers=admin_headers).status_code == 200


def test_a_limit_of_zero_disables_limiting(database: Database, settings: Settings) -> None:
    with TestClient(create_app(with_settings(settings, rate_limit_per_minute=0), db=database)) as client:
        assert all(client.post("/v1/sessions", content=b"{}").status_code != 429 for _ in range(20))


async def _call(
    middleware: RateLimitMiddleware, client_ip: str, path: str = "/v1/sessions", forwarded_for: str | None = None
) -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [] if forwarded_for is None else [(b"x-forwarded-for", forwarded_for.encode())]
    scope = {"type": "http", "method": "POST", "path": path, "client": (client_ip, 1234), "headers": headers}
    await middleware(scope, receive, send)  # type: ignore[arg-type]
    return int(sent[0]["status"])


async def _ok_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_each_client_address_has_its_own_bucket_and_buckets_refill() -> None:
    now = [1000.0]
    middleware = RateLimitMiddleware(_ok_app, per_minute=2, clock=lambda: now[0])

    async def scenario() -> list[int]:
        return [
            await _call(middleware, "203.0.113.1"),
            await _call(middleware, "203.0.113.1"),
            await _call(middleware, "203.0.113.1"),
            await _call(middleware, "203.0.113.2"),
        ]

    assert asyncio.run(scenario()) == [200, 200, 429, 200]
    now[0] += 30.0  # 2 per minute: one token back after 30 s
    assert asyncio.run(_call(middleware, "203.0.113.1")) == 200
    assert asyncio.run(_call(middleware, "203.0.113.1")) == 429


def test_retry_after_says_when_a_token_is_back() -> None:
    now = [0.0]
    buckets = TokenBuckets(6, clock=lambda: now[0])  # one token every 10 s
    for _ in range(6):
        assert buckets.take(("/v1/sessions", "a")) == 0.0
    assert buckets.take(("/v1/sessions", "a")) == pytest.approx(10.0)
    now[0] = 4.0
    assert buckets.take(("/v1/sessions", "a")) == pytest.approx(6.0)


def test_the_guarded_routes_are_the_ones_the_issue_names() -> None:
    assert set(LIMITED_ROUTES) == {
        ("POST", "/v1/sessions"),
        ("POST", "/v1/user/stripe/checkout-sessions"),
        ("POST", "/v1/stripe/webhook"),
        ("POST", "/console/sign-in"),
        ("POST", "/portal/sign-in"),
    }


# (peer, X-Forwarded-For, trusted proxies, the client the limiter sees)
CLIENT_ADDRESS_CASES = [
    ("203.0.113.9", None, (), "203.0.113.9"),
    ("127.0.0.1", "198.51.100.1", (), "127.0.0.1"),
    ("127.0.0.1", "198.51.100.1", ("10.0.0.1",), "127.0.0.1"),
    ("10.0.0.1", "198.51.100.1", ("10.0.0.1",), "198.51.100.1"),
    ("10.0.0.1", "198.51.100.1", ("10.0.0.0/8",), "198.51.100.1"),
    ("10.0.0.1", "spoofed, 198.51.100.1", ("10.0.0.1",), "198.51.100.1"),
    ("10.0.0.1", "spoofed, 198.51.100.1, 10.0.0.2", ("10.0.0.0/8",), "198.51.100.1"),
    ("10.0.0.1", "10.0.0.3, 10.0.0.2", ("10.0.0.0/8",), "10.0.0.3"),
    ("10.0.0.1", " , ", ("10.0.0.1",), "10.0.0.1"),
    ("10.0.0.1", None, ("10.0.0.1",), "10.0.0.1"),
    ("203.0.113.9", "198.51.100.1", ("*",), "198.51.100.1"),
    ("::ffff:10.0.0.1", "198.51.100.1", ("10.0.0.1",), "198.51.100.1"),
    ("10.0.0.1", "x" * 500, ("10.0.0.1",), "x" * 64),
]


@pytest.mark.parametrize(("peer", "forwarded_for", "trusted", "client"), CLIENT_ADDRESS_CASES)
def test_the_client_address_is_the_peer_unless_a_trusted_proxy_forwards_it(
    peer: str, forwarded_for: str | None, trusted: tuple[str, ...], client: str
) -> None:
    headers = [] if forwarded_for is None else [(b"x-forwarded-for", forwarded_for.encode())]
    scope = {"type": "http", "client": (peer, 1234), "headers": headers}
    assert client_address(scope, TrustedProxies(trusted)) == client  # type: ignore[arg-type]


def test_a_spoofed_forwarded_for_shares_the_peers_bucket_unless_the_peer_is_a_trusted_proxy() -> None:
    plain = RateLimitMiddleware(_ok_app, per_minute=2, clock=lambda: 0.0)
    proxied = RateLimitMiddleware(_ok_app, per_minute=2, trusted_proxies=("127.0.0.1",), clock=lambda: 0.0)

    async def spoofing(middleware: RateLimitMiddleware) -> list[int]:
        return [await _call(middleware, "127.0.0.1", forwarded_for=f"203.0.113.{i}") for i in range(4)]

    assert asyncio.run(spoofing(plain)) == [200, 200, 429, 429]
    assert asyncio.run(spoofing(proxied)) == [200, 200, 200, 200]


def _live_settings(tmp_path: Path) -> Settings:
    # The limiter answers before any route runs: an embedded database is enough here.
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'live.sqlite3'}",
        admin_token=ADMIN_TOKEN,
        gateway_service_token=GATEWAY_TOKEN,
    )


@pytest.mark.parametrize(
    ("forwarded_allow_ips", "honoured"),
    [("", False), ("10.9.8.7", False), ("127.0.0.1", True), ("10.0.0.0/8, 127.0.0.0/8", True)],
)
def test_the_real_server_honours_x_forwarded_for_only_from_a_configured_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forwarded_allow_ips: str, honoured: bool
) -> None:
    # "" leaves the variable unset, as on a fresh install (uvicorn reads it too).
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    env = {"MODELFAUCET_RATE_LIMIT_PER_MINUTE": "3"}
    if forwarded_allow_ips:
        env["FORWARDED_ALLOW_IPS"] = forwarded_allow_ips
    server = start_live_server(_live_settings(tmp_path), tmp_path, env)
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:

            def statuses(forwarded_for: list[str]) -> list[int]:
                return [
                    http.post("/v1/sessions", content=b"{}", headers={"X-Forwarded-For": value}).status_code
                    for value in forwarded_for
                ]

            spoofed = statuses([f"203.0.113.{i}" for i in range(1, 7)])
            if honoured:
                assert 429 not in spoofed  # six clients behind the proxy, one request each
                assert statuses(["198.51.100.7"] * 4)[3] == 429  # one client is still limited
            else:
                assert spoofed[:3] != [429] * 3 and spoofed[3:] == [429] * 3  # all one client: 127.0.0.1
            assert http.head("/health").status_code == 200
    finally:
        server.stop()
