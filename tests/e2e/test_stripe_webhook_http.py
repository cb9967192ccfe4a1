"""POST /v1/stripe/webhook over HTTP: raw-byte signatures, status codes, 20 concurrent deliveries."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import stripe_events
from modelfaucet.config import Settings
from modelfaucet.http.app import create_app
from modelfaucet.services.checkout import CheckoutCreated
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.seed import SeedResult
from tests.conftest import ADMIN_TOKEN, with_settings
from tests.stripe_support import WEBHOOK_SECRET, counts, event_bytes, pending_topup, session_user, signature_for

WEBHOOK = "/v1/stripe/webhook"


@pytest.fixture
def signed_client(database: Database, settings: Settings) -> Iterator[TestClient]:
    configured = with_settings(settings, stripe_webhook_secret=WEBHOOK_SECRET)
    with TestClient(create_app(configured, db=database), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def topup(ctx: ServiceContext, seeded: SeedResult) -> CheckoutCreated:
    return pending_topup(ctx, session_user(ctx, seeded))


def post(client: TestClient, payload: bytes, header: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return client.post(WEBHOOK, content=payload, headers=headers)


def test_a_signed_paid_completion_credits_and_reconciliation_stays_balanced(
    signed_client: TestClient, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    payload = event_bytes(session_id=topup.checkout_session_id)
    response = post(signed_client, payload, signature_for(payload))
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "credited"
    report = signed_client.get(
        "/v1/admin/reconciliation/ledger", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ).json()
    assert report["summary"]["mismatch_count"] == 0
    assert report["checks"]["credited_topups_posted_once"]["ok"] is True
    wallet = next(i for i in report["items"] if i["wallet_id"] == seeded.end_user_wallet_id)
    assert wallet["wallet_balance_usd"] == "15.00000000"


def refused_cases(payload: bytes) -> list[tuple[str, bytes, str | None]]:
    now = int(time.time())
    return [
        ("wrong secret", payload, signature_for(payload, "whsec_wrong")),
        ("missing header", payload, None),
        ("stale timestamp", payload, signature_for(payload, timestamp=now - 400)),
        ("future timestamp", payload, signature_for(payload, timestamp=now + 400)),
        ("re-serialised body", json.dumps(json.loads(payload), indent=1).encode(), signature_for(payload)),
        ("garbage header", payload, "nonsense"),
    ]


CASES = [
    "wrong secret",
    "missing header",
    "stale timestamp",
    "future timestamp",
    "re-serialised body",
    "garbage header",
]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_signature_answers_400_and_writes_nothing(
    signed_client: TestClient, ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated, case: str
) -> None:
    payload = event_bytes(session_id=topup.checkout_session_id)
    _, body, header = next(row for row in refused_cases(payload) if row[0] == case)
    before = counts(ctx)
    response = post(signed_client, body, header)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert "signature" in response.json()["error"]["message"]
    assert counts(ctx) == before


def test_rotated_signatures_with_several_v1_values_are_accepted(
    signed_client: TestClient, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    payload = event_bytes(session_id=topup.checkout_session_id)
    now = int(time.time())
    good = signature_for(payload, timestamp=now).split("v1=")[1]
    old = signature_for(payload, "whsec_old_rolled", timestamp=now).split("v1=")[1]
    response = post(signed_client, payload, f"t={now},v1={old},v1={good}")
    assert response.status_code == 200
    assert response.json()["outcome"] == "credited"


def test_without_a_secret_unsigned_events_are_accepted(
    client: TestClient, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    response = post(client, event_bytes(session_id=topup.checkout_session_id), None)
    assert response.status_code == 200
    assert response.json()["outcome"] == "credited"


def test_an_unknown_session_answers_404_with_the_exact_message(signed_client: TestClient, seeded: SeedResult) -> None:
    payload = event_bytes(session_id="cs_test_nobody")
    response = post(signed_client, payload, signature_for(payload))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["message"] == "Stripe checkout top-up was not found."


def test_an_amount_mismatch_answers_400(signed_client: TestClient, seeded: SeedResult, topup: CheckoutCreated) -> None:
    payload = event_bytes(session_id=topup.checkout_session_id, amount_cents=5000)
    response = post(signed_client, payload, signature_for(payload))
    assert response.status_code == 400
    assert response.json()["error"]["details"]["expected_amount_cents"] == 500


def test_other_event_types_answer_received_and_ignored(signed_client: TestClient, seeded: SeedResult) -> None:
    payload = event_bytes(session_id="cs_test_x", event_id="evt_ping", event_type="payment_intent.created")
    response = post(signed_client, payload, signature_for(payload))
    assert response.status_code == 200
    assert response.json()["received"] is True
    assert response.json()["ignored"] is True


def test_twenty_concurrent_http_deliveries_of_one_event_credit_once(
    signed_client: TestClient, ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    payload = event_bytes(session_id=topup.checkout_session_id, event_id="evt_http_concurrent")
    header = signature_for(payload)
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: post(signed_client, payload, header), range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    assert sum(1 for r in responses if not r.json().get("duplicate")) == 1
    assert counts(ctx)["topup_transactions"] == 1
    wallet = signed_client.get(
        f"/v1/admin/wallets/{seeded.end_user_wallet_id}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ).json()
    assert wallet["balance_usd"] == "15.00000000"


def store_event_as_the_first_release_did(ctx: ServiceContext, event_id: str, status: str, response_body: str) -> None:
    with ctx.db.transaction() as conn:
        conn.execute(
            insert(stripe_events).values(
                id=event_id,
                type="checkout.session.completed",
                payload="{}",
                status=status,
                response_status=200,
                response_body=response_body,
                received_at=datetime.now(UTC),
                processed_at=datetime.now(UTC),
            )
        )


def test_a_duplicate_of_an_event_the_first_release_stored_gets_its_stored_answer_byte_for_byte(
    signed_client: TestClient, ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    # Exactly what the first release wrote: json.dumps of its answer, default separators.
    stored = (
        '{"received": true, "event_id": "evt_first_release", "outcome": "credited", '
        f'"topup_id": "{topup.topup_id}", "checkout_session_id": "{topup.checkout_session_id}", '
        '"status": "credited", "transaction_id": "00000000-0000-4000-8000-000000000001"}'
    )
    store_event_as_the_first_release_did(ctx, "evt_first_release", "processed", stored)
    before = counts(ctx)

    payload = event_bytes(session_id=topup.checkout_session_id, event_id="evt_first_release")
    response = post(signed_client, payload, signature_for(payload))

    assert response.status_code == 200
    assert response.content == (
        b'{"received":true,"event_id":"evt_first_release","outcome":"credited",'
        + f'"topup_id":"{topup.topup_id}","checkout_session_id":"{topup.checkout_session_id}",'.encode()
        + b'"status":"credited","transaction_id":"00000000-0000-4000-8000-000000000001","duplicate":true}'
    )
    assert counts(ctx) == before, "a duplicate credits nothing and writes nothing"


def test_a_duplicate_of_an_ignored_event_the_first_release_stored_answers_ignored(
    signed_client: TestClient, ctx: ServiceContext, seeded: SeedResult
) -> None:
    stored = '{"received": true, "ignored": true, "event_id": "evt_old_ping"}'
    store_event_as_the_first_release_did(ctx, "evt_old_ping", "ignored", stored)
    payload = event_bytes(session_id="cs_test_x", event_id="evt_old_ping", event_type="payment_intent.created")
    response = post(signed_client, payload, signature_for(payload))
    assert (response.status_code, response.content) == (
        200,
        b'{"received":true,"ignored":true,"event_id":"evt_old_ping","duplicate":true}',
    )


def test_an_event_is_stored_in_the_first_release_format(
    signed_client: TestClient, ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    payload = event_bytes(session_id=topup.checkout_session_id, event_id="evt_format")
    answer = post(signed_client, payload, signature_for(payload)).json()
    with ctx.db.read() as conn:
        row = conn.execute(select(stripe_events).where(stripe_events.c.id == "evt_format")).one()
    assert (row.status, row.response_status) == ("processed", 200)
    assert row.response_body == (
        '{"received": true, "event_id": "evt_format", "outcome": "credited", '
        f'"topup_id": "{topup.topup_id}", "checkout_session_id": "{topup.checkout_session_id}", '
        f'"status": "credited", "transaction_id": "{answer["transaction_id"]}"}}'
    )
