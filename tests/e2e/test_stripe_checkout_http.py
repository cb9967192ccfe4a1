"""POST /v1/user/stripe/checkout-sessions: offline provider, and the real Stripe library
against a local fake of the Checkout endpoint (what it sends, how its errors surface)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import stripe_topups
from modelfaucet.config import Settings
from modelfaucet.http.app import create_app
from modelfaucet.services.seed import SeedResult
from tests.conftest import APP_KEY_HEADERS, with_settings

FAKE_KEY = "sk_test_fake_0123456789_not_a_secret"
CHECKOUT_BODY = {"amount_usd": "5.00", "success_url": "https://app.example/ok", "cancel_url": "https://app.example/no"}


@dataclass
class FakeStripe:
    """A tiny stand-in for ``POST /v1/checkout/sessions`` on 127.0.0.1."""

    base_url: str = ""
    answer_status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    sessions_by_key: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = parse_qs(self.rfile.read(length).decode())
            key = self.headers.get("Idempotency-Key", "")
            fake.requests.append(
                {
                    "path": self.path,
                    "form": {k: v[0] for k, v in form.items()},
                    "idempotency_key": key,
                    "authorization": self.headers.get("Authorization", ""),
                }
            )
            if fake.answer_status != 200:
                body = {"error": {"type": "invalid_request_error", "message": "fake refusal with sk_test_echo"}}
                self._answer(fake.answer_status, body)
                return
            session_id = fake.sessions_by_key.setdefault(key, f"cs_test_fake_{len(fake.sessions_by_key) + 1}")
            self._answer(
                200,
                {"id": session_id, "object": "checkout.session", "url": f"https://checkout.stripe.test/{session_id}"},
            )

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Stripe-Should-Retry", "false")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def stripe_client(database: Database, settings: Settings, fake_stripe: FakeStripe) -> Iterator[TestClient]:
    configured = with_settings(settings, stripe_secret_key=FAKE_KEY, stripe_api_base=fake_stripe.base_url)
    with TestClient(create_app(configured, db=database), raise_server_exceptions=False) as c:
        yield c


def session_headers(client: TestClient, external_user_id: str = "demo-user-1") -> dict[str, str]:
    response = client.post(
        "/v1/sessions",
        headers=APP_KEY_HEADERS,
        json={"public_app_id": "app_pub_demo", "external_user_id": external_user_id},
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['session_token']}"}


def pending_rows(database: Database) -> int:
    with database.read() as conn:
        return int(conn.execute(select(func.count()).select_from(stripe_topups)).scalar_one())


def test_without_a_key_the_offline_provider_issues_a_cs_test_id_and_a_pending_topup(
    client: TestClient, seeded: SeedResult, database: Database
) -> None:
    response = client.post("/v1/user/stripe/checkout-sessions", headers=session_headers(client), json=CHECKOUT_BODY)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["checkout_session_id"].startswith("cs_test_")
    assert body["amount_usd"] == "5.00000000"
    assert body["status"] == "pending"
    assert body["wallet_id"] == seeded.end_user_wallet_id
    assert body["checkout_url"]
    with database.read() as conn:
        row = conn.execute(select(stripe_topups)).one()
    assert (row.status, row.amount_units, row.amount_cents, row.currency) == ("pending", 500_000_000, 500, "usd")


def test_the_stripe_library_sends_amount_in_cents_usd_payment_mode_metadata_and_an_idempotency_key(
    stripe_client: TestClient, seeded: SeedResult, fake_stripe: FakeStripe
) -> None:
    response = stripe_client.post(
        "/v1/user/stripe/checkout-sessions", headers=session_headers(stripe_client), json=CHECKOUT_BODY
    )
    assert response.status_code == 201, response.text
    assert response.json()["checkout_session_id"] == "cs_test_fake_1"
    assert response.json()["checkout_url"] == "https://checkout.stripe.test/cs_test_fake_1"

    [sent] = fake_stripe.requests
    form = sent["form"]
    assert sent["path"] == "/v1/checkout/sessions"
    assert sent["authorization"] == f"Bearer {FAKE_KEY}"
    assert sent["idempotency_key"]
    assert form["mode"] == "payment"
    assert form["line_items[0][price_data][currency]"] == "usd"
    assert form["line_items[0][price_data][unit_amount]"] == "500"
    assert form["line_items[0][quantity]"] == "1"
    assert form["metadata[wallet_id]"] == seeded.end_user_wallet_id
    assert form["metadata[amount_usd]"] == "5.00000000"
    assert form["metadata[amount_cents]"] == "500"
    assert form["success_url"] == "https://app.example/ok"
    assert form["cancel_url"] == "https://app.example/no"


def test_a_retried_request_with_the_same_idempotency_key_opens_one_session_and_one_pending_row(
    stripe_client: TestClient, seeded: SeedResult, fake_stripe: FakeStripe, database: Database
) -> None:
    headers = {**session_headers(stripe_client), "Idempotency-Key": "checkout-retry-0001"}
    first = stripe_client.post("/v1/user/stripe/checkout-sessions", headers=headers, json=CHECKOUT_BODY)
    second = stripe_client.post("/v1/user/stripe/checkout-sessions", headers=headers, json=CHECKOUT_BODY)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert len({r["idempotency_key"] for r in fake_stripe.requests}) == 1
    assert pending_rows(database) == 1

    other = stripe_client.post(
        "/v1/user/stripe/checkout-sessions",
        headers={**headers, "Idempotency-Key": "checkout-retry-0002"},
        json=CHECKOUT_BODY,
    )
    assert other.json()["checkout_session_id"] != first.json()["checkout_session_id"]
    assert pending_rows(database) == 2


def test_the_offline_provider_honours_the_idempotency_key_and_refuses_its_reuse_for_another_amount(
    client: TestClient, seeded: SeedResult, database: Database
) -> None:
    headers = {**session_headers(client), "Idempotency-Key": "offline-retry-0001"}
    first = client.post("/v1/user/stripe/checkout-sessions", headers=headers, json=CHECKOUT_BODY)
    second = client.post("/v1/user/stripe/checkout-sessions", headers=headers, json=CHECKOUT_BODY)
    assert first.json() == second.json()
    assert pending_rows(database) == 1
    changed = client.post(
        "/v1/user/stripe/checkout-sessions", headers=headers, json={**CHECKOUT_BODY, "amount_usd": "6.00"}
    )
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "idempotency_conflict"
    assert pending_rows(database) == 1


@pytest.mark.parametrize("status", [400, 402, 500, 503])
def test_a_stripe_error_is_a_clear_502_and_leaves_no_pending_row(
    stripe_client: TestClient, seeded: SeedResult, fake_stripe: FakeStripe, database: Database, status: int
) -> None:
    fake_stripe.answer_status = status
    response = stripe_client.post(
        "/v1/user/stripe/checkout-sessions", headers=session_headers(stripe_client), json=CHECKOUT_BODY
    )
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_error"
    assert "Stripe" in error["message"]
    assert error["details"]["upstream_status"] == status
    assert "sk_test" not in response.text
    assert "Traceback" not in response.text
    assert pending_rows(database) == 0


def test_an_unreachable_stripe_is_a_502_and_leaves_no_pending_row(
    database: Database, settings: Settings, seeded: SeedResult
) -> None:
    from tests.conftest import free_port

    configured = with_settings(settings, stripe_secret_key=FAKE_KEY, stripe_api_base=f"http://127.0.0.1:{free_port()}")
    with TestClient(create_app(configured, db=database), raise_server_exceptions=False) as c:
        response = c.post("/v1/user/stripe/checkout-sessions", headers=session_headers(c), json=CHECKOUT_BODY)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"
    assert pending_rows(database) == 0


@pytest.mark.parametrize(
    ("case", "changes"),
    [
        ("a fraction of a cent", {"amount_usd": "5.001"}),
        ("below Stripe's 0.50 minimum", {"amount_usd": "0.49"}),
        ("zero", {"amount_usd": "0"}),
        ("a JSON number", {"amount_usd": 5}),
        ("a negative amount", {"amount_usd": "-5.00"}),
        ("above Stripe's maximum", {"amount_usd": "1000000.00"}),
        ("a non-http success_url", {"success_url": "javascript:alert(1)"}),
        ("a relative cancel_url", {"cancel_url": "/cancel"}),
        ("an unknown field", {"wallet_id": "someone-else"}),
    ],
)
def test_a_checkout_request_is_refused_with_400_and_writes_nothing_for(
    *,
    stripe_client: TestClient,
    seeded: SeedResult,
    fake_stripe: FakeStripe,
    database: Database,
    case: str,
    changes: dict[str, Any],
) -> None:
    response = stripe_client.post(
        "/v1/user/stripe/checkout-sessions", headers=session_headers(stripe_client), json={**CHECKOUT_BODY, **changes}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert fake_stripe.requests == []
    assert pending_rows(database) == 0


def test_checkout_needs_a_session(client: TestClient, seeded: SeedResult) -> None:
    response = client.post("/v1/user/stripe/checkout-sessions", json=CHECKOUT_BODY)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_session"


# --- Idempotency-Key: the one key rule, and a reused key must mean the same request (issue 18.11)

CHANGED_REQUESTS = [
    ("another success_url", {"success_url": "https://app.example/elsewhere"}, ["success_url"]),
    ("another cancel_url", {"cancel_url": "https://app.example/elsewhere"}, ["cancel_url"]),
    ("another amount", {"amount_usd": "6.00"}, ["amount_usd"]),
    (
        "another amount and URL",
        {"amount_usd": "6.00", "success_url": "https://b.example/"},
        ["amount_usd", "success_url"],
    ),
]


@pytest.mark.parametrize(
    ("case", "changes", "differing"), CHANGED_REQUESTS, ids=[case for case, _, _ in CHANGED_REQUESTS]
)
def test_a_reused_key_with_a_changed_request_is_a_409_naming_the_fields_and_opens_nothing(
    *,
    stripe_client: TestClient,
    seeded: SeedResult,
    fake_stripe: FakeStripe,
    database: Database,
    case: str,
    changes: dict[str, Any],
    differing: list[str],
) -> None:
    headers = {**session_headers(stripe_client), "Idempotency-Key": "checkout-reuse-0001"}
    first = stripe_client.post("/v1/user/stripe/checkout-sessions", headers=headers, json=CHECKOUT_BODY)
    assert first.status_code == 201, first.text

    changed = stripe_client.post(
        "/v1/user/stripe/checkout-sessions", headers=headers, json={**CHECKOUT_BODY, **changes}
    )
    assert changed.status_code == 409, changed.text
    error = changed.json()["error"]
    assert error["code"] == "idempotency_conflict"
    assert error["details"]["differing_fields"] == differing
    for field_name in differing:
        assert field_name in error["message"]
    assert len(fake_stripe.requests) == 1, "a conflicting request never reaches Stripe"
    assert pending_rows(database) == 1

    replayed = stripe_client.post("/v1/user/stripe/checkout-sessions", headers=headers, json=CHECKOUT_BODY)
    assert (replayed.status_code, replayed.json()) == (201, first.json())
    assert replayed.headers["idempotent-replayed"] == "true"


def test_the_offline_provider_refuses_a_reused_key_with_another_success_url(
    client: TestClient, seeded: SeedResult, database: Database
) -> None:
    headers = {**session_headers(client), "Idempotency-Key": "offline-reuse-0001"}
    first = client.post("/v1/user/stripe/checkout-sessions", headers=headers, json=CHECKOUT_BODY)
    assert first.status_code == 201, first.text
    changed = client.post(
        "/v1/user/stripe/checkout-sessions",
        headers=headers,
        json={**CHECKOUT_BODY, "success_url": "https://evil.example/ok"},
    )
    assert changed.status_code == 409, changed.text
    assert changed.json()["error"]["details"]["differing_fields"] == ["success_url"]
    assert pending_rows(database) == 1


def test_the_same_key_of_two_end_users_opens_two_sessions(
    client: TestClient, seeded: SeedResult, database: Database
) -> None:
    key = {"Idempotency-Key": "shared-key-0001"}
    mine = client.post(
        "/v1/user/stripe/checkout-sessions", headers={**session_headers(client), **key}, json=CHECKOUT_BODY
    )
    theirs = client.post(
        "/v1/user/stripe/checkout-sessions",
        headers={**session_headers(client, "demo-user-2"), **key},
        json={**CHECKOUT_BODY, "amount_usd": "7.00"},
    )
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["checkout_session_id"] != theirs.json()["checkout_session_id"]
    assert pending_rows(database) == 2


@pytest.mark.parametrize(
    ("case", "key"),
    [("seven characters", "abcdefg"), ("129 characters", "k" * 129), ("a space", "checkout key 0001")],
    ids=["seven characters", "129 characters", "a space"],
)
def test_an_idempotency_key_outside_the_one_key_rule_is_a_400_and_reaches_nothing(
    *,
    stripe_client: TestClient,
    seeded: SeedResult,
    fake_stripe: FakeStripe,
    database: Database,
    case: str,
    key: str,
) -> None:
    response = stripe_client.post(
        "/v1/user/stripe/checkout-sessions",
        headers={**session_headers(stripe_client), "Idempotency-Key": key},
        json=CHECKOUT_BODY,
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["details"]["field"]) == ("invalid_request", "idempotency_key")
    assert "visible ASCII" in error["message"]
    assert fake_stripe.requests == []
    assert pending_rows(database) == 0
