"""A local stand-in for Stripe's Checkout Sessions API, for the real ``stripe`` library to talk to.

It answers what the service asks of Stripe — create a session, list the sessions of a window
(newest first, in pages linked by ``starting_after``, as Stripe pages them), retrieve one —
and lets a test change a session as a cardholder would (:meth:`FakeStripeApi.pay`) without
any webhook being sent: the lost-webhook case. Pages are deliberately small so the
library's auto-paging is exercised.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PAGE_SIZE = 2
SESSIONS_PATH = "/v1/checkout/sessions"


@dataclass
class FakeStripeApi:
    base_url: str = ""
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # (method, path, query)
    list_status: int = 200  # anything else: the list call fails with that status
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *, amount_cents: int, currency: str = "usd", created: int | None = None) -> str:
        with self.lock:
            session_id = f"cs_test_fake_{len(self.sessions) + 1}"
            self.sessions[session_id] = {
                "id": session_id,
                "object": "checkout.session",
                "mode": "payment",
                "status": "open",
                "payment_status": "unpaid",
                "amount_total": amount_cents,
                "currency": currency,
                "payment_intent": None,
                "created": int(time.time()) if created is None else created,
                "url": f"https://checkout.stripe.test/{session_id}",
            }
            return session_id

    def pay(self, session_id: str) -> None:
        """The cardholder pays; Stripe's webhook never arrives."""
        with self.lock:
            self.sessions[session_id].update(
                status="complete", payment_status="paid", payment_intent=f"pi_fake_{session_id[-6:]}"
            )

    def list_calls(self) -> list[dict[str, str]]:
        return [query for method, path, query in self.requests if (method, path) == ("GET", SESSIONS_PATH)]

    # -- what the HTTP handler answers ---------------------------------------------------------

    def page(self, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            newest_first = sorted(self.sessions.values(), key=lambda s: (s["created"], s["id"]), reverse=True)
        since = int(query.get("created[gte]", "0"))
        listed = [s for s in newest_first if s["created"] >= since]
        after = query.get("starting_after")
        if after:
            listed = listed[[s["id"] for s in listed].index(after) + 1 :]
        return {"object": "list", "url": SESSIONS_PATH, "has_more": len(listed) > PAGE_SIZE, "data": listed[:PAGE_SIZE]}


@contextmanager
def running_fake_stripe() -> Iterator[FakeStripeApi]:
    fake = FakeStripeApi()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            fake.requests.append(("GET", parts.path, query))
            if parts.path == SESSIONS_PATH:
                if fake.list_status != 200:
                    self._answer(fake.list_status, {"error": {"type": "api_error", "message": "fake outage"}})
                    return
                self._answer(200, fake.page(query))
                return
            session = fake.sessions.get(parts.path.removeprefix(SESSIONS_PATH + "/"))
            if session is None:
                missing = {"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such"}}
                self._answer(404, missing)
                return
            self._answer(200, session)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            fake.requests.append(("POST", self.path, form))
            session_id = fake.add(
                amount_cents=int(form["line_items[0][price_data][unit_amount]"]),
                currency=form["line_items[0][price_data][currency]"],
            )
            self._answer(200, fake.sessions[session_id])

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
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
