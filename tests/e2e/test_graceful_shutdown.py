"""SIGTERM under load: the real server stops taking connections, finishes the requests in
flight, drains the usage posting queue, and exits 0 — every usage event a caller was
answered for is in the database, and the ledger still reconciles."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from modelfaucet.adapters.db.tables import usage_events
from modelfaucet.config import Settings
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import SeedResult
from tests.conftest import GATEWAY_TOKEN, start_live_server
from tests.e2e.test_usage_http import body

CALLERS = 6
EVENTS_PER_REQUEST = 20
LOAD_SECONDS_BEFORE_SIGTERM = 1.5


def test_sigterm_drains_in_flight_requests_and_the_usage_queue_then_exits_0(
    settings: Settings, tmp_path: Path, ctx: ServiceContext, seeded: SeedResult
) -> None:
    server = start_live_server(settings, tmp_path)
    acknowledged: list[str] = []
    answered_after_sigterm: list[int] = []
    sigterm_sent = threading.Event()
    lock = threading.Lock()

    def caller(number: int) -> None:
        headers = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            for batch in range(10_000):
                events = [body(f"drain-{number}-{batch}-{i}") for i in range(EVENTS_PER_REQUEST)]
                try:
                    response = client.post("/v1/usage/events", json={"events": events}, headers=headers)
                except httpx.HTTPError:
                    return  # the server no longer takes requests: nothing was acknowledged
                with lock:
                    if sigterm_sent.is_set():
                        answered_after_sigterm.append(response.status_code)
                    if response.status_code == 200:
                        items = response.json()["items"]
                        acknowledged.extend(i["request_id"] for i in items if i["status"] in ("recorded", "duplicate"))

    callers = [threading.Thread(target=caller, args=(n,)) for n in range(CALLERS)]
    for thread in callers:
        thread.start()
    time.sleep(LOAD_SECONDS_BEFORE_SIGTERM)
    with lock:
        acknowledged_before = len(acknowledged)
        sigterm_sent.set()
    server.process.send_signal(signal.SIGTERM)
    try:
        exit_code = server.process.wait(timeout=60)
    finally:
        server.stop()
        for thread in callers:
            thread.join(timeout=60)

    log = server.log_path.read_text()
    assert exit_code == 0, log
    assert "Traceback" not in log
    assert acknowledged_before > 0, "the load never got going"
    # Requests in flight when the signal came were finished and answered, not cut off.
    assert answered_after_sigterm, "no request was in flight at SIGTERM"
    assert set(answered_after_sigterm) == {200}, answered_after_sigterm
    with ctx.db.read() as conn:
        recorded = set(conn.execute(select(usage_events.c.request_id)).scalars())
    missing = set(acknowledged) - recorded
    assert not missing, f"{len(missing)} acknowledged events were lost, e.g. {sorted(missing)[:3]}"
    assert reconcile_ledger(ctx).ok
