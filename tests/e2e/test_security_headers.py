"""Security headers on every response: success, refusal, 404, 413 and the docs."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/health", {}, 200),
        ("GET", "/openapi.json", {}, 200),
        ("GET", "/docs", {}, 200),
        ("GET", "/v1/admin/wallets", {}, 401),
        ("GET", "/no/such/route", {}, 404),
        ("POST", "/v1/sessions", {"content": b"not json", "headers": {"content-type": "application/json"}}, 400),
        ("POST", "/v1/sessions", {"content": b"x" * 2_000_000}, 413),
    ],
)
def test_every_response_carries_the_security_headers(
    client: TestClient, method: str, path: str, kwargs: dict[str, object], status: int
) -> None:
    response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status
    for header, value in EXPECTED.items():
        assert response.headers.get(header) == value, header
    assert response.headers["x-request-id"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
