"""Crash survival: SIGKILL the server mid-load, restart it, lose nothing it acknowledged.

Client threads drive usage ingestion (single events and batches) and top-ups (Checkout and
its signed webhook) against a real ``modelfaucet serve`` process and record every
acknowledged request. The server is killed with SIGKILL (no shutdown hook, no flush) while
they run, then restarted on the same database. Then:

- every acknowledged usage event is in ``usage_events`` exactly once, with its ledger
  transaction, and every acknowledged credit is a credited top-up with its transaction;
- nothing unacknowledged is half-written: no usage row without its postings, no credited
  top-up without its transaction, no transaction that does not balance (reconciliation);
- re-sending everything (what a gateway and Stripe do after an outage) posts the
  unacknowledged events once and the acknowledged ones not again.

On SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, select

from modelfaucet.adapters.db.tables import ledger_transactions, stripe_topups, usage_events
from modelfaucet.config import Settings
from modelfaucet.domain.ledger import Reason
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.seed import SeedResult
from tests.conftest import ADMIN_TOKEN, APP_KEY_HEADERS, GATEWAY_TOKEN, start_live_server
from tests.integration.usage_support import fund_end_user
from tests.reliability.support import LIVE_ENV, invariant_violations, scaled, signed_headers, usage_body, webhook_event

GATEWAY = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
USERS = [f"crash-user-{n}" for n in range(4)]


@dataclass
class Ledgerbook:
    """What the clients sent and what the server acknowledged."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent_usage: dict[str, dict[str, object]] = field(default_factory=dict)
    acked_usage: set[str] = field(default_factory=set)
    sent_webhooks: dict[str, bytes] = field(default_factory=dict)  # checkout session -> event
    acked_credits: set[str] = field(default_factory=set)
    failures: int = 0


def _usage_client(base_url: str, book: Ledgerbook, stop: threading.Event, worker: int) -> None:
    counter = itertools.count()
    with httpx.Client(base_url=base_url, timeout=10) as client:
        while not stop.is_set():
            n = next(counter)
            if n % 4 == 3:  # a batch of five
                events = [usage_body(f"w{worker}-b{n}-{k}", USERS[(n + k) % len(USERS)]) for k in range(5)]
                body: dict[str, object] = {"events": events}
            else:
                events = [usage_body(f"w{worker}-s{n}", USERS[n % len(USERS)])]
                body = events[0]
            with book.lock:
                for event in events:
                    book.sent_usage[str(event["request_id"])] = event
            try:
                response = client.post("/v1/usage/events", json=body, headers=GATEWAY)
            except httpx.HTTPError:
                with book.lock:
                    book.failures += 1
                continue
            acked: list[str] = []
            if "events" in body and response.status_code == 200:
                acked = [item["request_id"] for item in response.json()["items"] if item["status"] == "recorded"]
            elif response.status_code == 201:
                acked = [str(events[0]["request_id"])]
            with book.lock:
                book.acked_usage.update(acked)


def _topup_client(base_url: str, book: Ledgerbook, stop: threading.Event, token: str) -> None:
    counter = itertools.count()
    with httpx.Client(base_url=base_url, timeout=10) as client:
        while not stop.is_set():
            n = next(counter)
            try:
                created = client.post(
                    "/v1/user/stripe/checkout-sessions",
                    headers={"Authorization": f"Bearer {token}"},
                    json={
                        "amount_usd": "1.00000000",
                        "success_url": "https://app.example/ok",
                        "cancel_url": "https://app.example/cancel",
                    },
                )
                if created.status_code != 201:
                    continue
                session_id = created.json()["checkout_session_id"]
                payload = webhook_event(f"evt_crash_{n}_{session_id}", session_id, 100)
                with book.lock:
                    book.sent_webhooks[session_id] = payload
                response = client.post("/v1/stripe/webhook", content=payload, headers=signed_headers(payload))
            except httpx.HTTPError:
                with book.lock:
                    book.failures += 1
                continue
            if response.status_code == 200 and response.json().get("outcome") == "credited":
                with book.lock:
                    book.acked_credits.add(session_id)


def _count(ctx: ServiceContext, stmt: object) -> int:
    with ctx.db.read() as conn:
        return int(conn.execute(stmt).scalar_one())  # type: ignore[call-overload]


def test_acknowledged_work_survives_sigkill_and_nothing_is_half_written(
    settings: Settings, ctx: ServiceContext, seeded: SeedResult, tmp_path: Path
) -> None:
    for user in USERS:
        fund_end_user(ctx, seeded, user, 1_000 * 100_000_000)
    book = Ledgerbook()
    kills = scaled(1, 3)
    for round_number in range(kills):
        server = start_live_server(settings, tmp_path, LIVE_ENV)
        token = httpx.post(
            f"{server.base_url}/v1/sessions",
            headers=APP_KEY_HEADERS,
            json={"public_app_id": "app_pub_demo", "external_user_id": "crash-topup"},
            timeout=10,
        ).json()["session_token"]
        stop = threading.Event()
        threads = [
            threading.Thread(target=_usage_client, args=(server.base_url, book, stop, 10 * round_number + w))
            for w in range(3)
        ]
        threads.append(threading.Thread(target=_topup_client, args=(server.base_url, book, stop, token)))
        for thread in threads:
            thread.start()
        time.sleep(scaled(2, 4))
        os.kill(server.process.pid, signal.SIGKILL)  # mid-load: no shutdown hook runs
        server.process.wait(timeout=10)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
            assert not thread.is_alive()

    assert book.acked_usage and book.acked_credits, "the load must have been acknowledged before the kill"

    # 1. Everything acknowledged is there exactly once, with its money.
    with ctx.db.read() as conn:
        rows = conn.execute(
            select(usage_events.c.request_id, usage_events.c.transaction_id).where(
                usage_events.c.request_id.in_(sorted(book.acked_usage))
            )
        ).all()
        credited = {
            row.checkout_session_id: row.transaction_id
            for row in conn.execute(
                select(stripe_topups.c.checkout_session_id, stripe_topups.c.transaction_id).where(
                    stripe_topups.c.status == "credited"
                )
            )
        }
    assert sorted(row.request_id for row in rows) == sorted(book.acked_usage)
    assert all(row.transaction_id is not None for row in rows)
    assert book.acked_credits <= set(credited)
    assert all(credited[session] is not None for session in book.acked_credits)

    # 2. Nothing half-written: every row has exactly its postings and every ledger rule holds.
    assert invariant_violations(ctx) == []

    # 3. Restart on the same database; the clients retry everything they ever sent.
    server = start_live_server(settings, tmp_path, LIVE_ENV)
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            retry = list(book.sent_usage.values())
            for start in range(0, len(retry), 500):
                response = client.post("/v1/usage/events", json={"events": retry[start : start + 500]}, headers=GATEWAY)
                assert response.status_code == 200, response.text
                for item in response.json()["items"]:
                    assert item["status"] in ("recorded", "duplicate"), item
                    if item["request_id"] in book.acked_usage:
                        assert item["status"] == "duplicate", item
            for payload in book.sent_webhooks.values():
                response = client.post("/v1/stripe/webhook", content=payload, headers=signed_headers(payload))
                assert response.status_code == 200, response.text
            report = client.get("/v1/admin/reconciliation/ledger", headers=ADMIN).json()
            assert report["ok"] is True
    finally:
        server.stop()

    assert _count(ctx, select(func.count()).select_from(usage_events)) == len(book.sent_usage)
    topup_reason = Reason.STRIPE_CHECKOUT_TOPUP.value
    assert _count(ctx, select(func.count()).where(ledger_transactions.c.reason == topup_reason)) == len(
        book.sent_webhooks
    )
    assert invariant_violations(ctx) == []
    print(
        f"\ncrash survival on {settings.database_url.split(':', maxsplit=1)[0]}: {kills} SIGKILL(s), "
        f"{len(book.sent_usage)} usage events sent, {len(book.acked_usage)} acknowledged before the kill, "
        f"{len(book.sent_webhooks)} top-ups sent, {len(book.acked_credits)} credits acknowledged, "
        f"{book.failures} requests cut by the kill; lost: 0, doubled: 0"
    )
