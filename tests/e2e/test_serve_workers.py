"""``modelfaucet serve --workers 2``: both processes take connections, and both drain on SIGTERM.

Each worker listens on its own SO_REUSEPORT socket, so the kernel spreads connections over
them; on one shared socket a single worker could accept a whole burst of keep-alive
connections. /metrics names the worker process that answered.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from modelfaucet.adapters.db.tables import usage_events
from modelfaucet.config import Settings
from modelfaucet.http.server import reuse_port_supported
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import SeedResult
from tests.conftest import GATEWAY_TOKEN, LiveServer, start_live_server
from tests.e2e.test_usage_http import body

CONNECTIONS = 32
PID = re.compile(r"^modelfaucet_worker_process_id (\S+)$", re.MULTILINE)


def _worker_pid(client: httpx.Client) -> int:
    response = client.get("/metrics")
    assert response.status_code == 200
    match = PID.search(response.text)
    assert match is not None
    return int(float(match.group(1)))


def _raw_worker_pid(sock: socket.socket) -> int:
    """GET /metrics on an open keep-alive connection; the answering worker's pid."""
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(rest) < length:
        rest += sock.recv(65536)
    match = PID.search(rest.decode())
    assert head.startswith(b"HTTP/1.1 200") and match is not None
    return int(float(match.group(1)))


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


@pytest.fixture
def two_workers(settings: Settings, tmp_path: Path, seeded: SeedResult, db_url: str) -> LiveServer:
    if not db_url.startswith("postgresql"):
        pytest.skip("several workers need PostgreSQL")
    if not reuse_port_supported():
        pytest.skip("no SO_REUSEPORT here")
    # Two worker processes import the app side by side: slower to be ready on a busy machine.
    return start_live_server(settings, tmp_path, {"MODELFAUCET_WORKERS": "2"}, ready_within=120)


def test_two_workers_both_take_keep_alive_connections_and_both_drain_on_sigterm(
    two_workers: LiveServer, ctx: ServiceContext
) -> None:
    server = two_workers
    try:
        workers = _children(server.process.pid) - {server.process.pid}
        # 32 connections opened in a burst, before any worker accepts one (as B2's clients
        # connect): on one shared socket the first worker to wake would accept them all.
        port = int(server.base_url.rsplit(":", 1)[1])
        burst = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(CONNECTIONS)]
        try:
            answered_by = [_raw_worker_pid(sock) for sock in burst]
            assert [_raw_worker_pid(sock) for sock in burst] == answered_by  # keep-alive: same worker
        finally:
            for sock in burst:
                sock.close()
        per_worker = {pid: answered_by.count(pid) for pid in set(answered_by)}
        assert len(per_worker) == 2, per_worker  # both processes answer...
        assert set(per_worker) <= workers  # ...they are the server's own workers...
        assert min(per_worker.values()) >= CONNECTIONS // 8, per_worker  # ...and share the connections

        clients = [httpx.Client(base_url=server.base_url, timeout=30) for _ in range(CONNECTIONS)]
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            answered_by = list(pool.map(_worker_pid, clients))

        # Load on every connection, then SIGTERM: both workers finish and drain their queues.
        acknowledged: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def post(number: int) -> None:
            client = clients[number]
            for batch in range(10_000):
                if stop.is_set() and batch % 2:
                    return
                events = [body(f"w2-{number}-{batch}-{i}") for i in range(5)]
                try:
                    response = client.post(
                        "/v1/usage/events",
                        json={"events": events},
                        headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"},
                    )
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    with lock:
                        acknowledged.extend(
                            i["request_id"] for i in response.json()["items"] if i["status"] == "recorded"
                        )

        threads = [threading.Thread(target=post, args=(n,)) for n in range(CONNECTIONS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with lock:
                if len(acknowledged) >= 200:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the usage load never got going")
        server.process.send_signal(signal.SIGTERM)
        exit_code = server.process.wait(timeout=90)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        for client in clients:
            client.close()
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert exit_code == 0, log
    assert "Traceback" not in log
    assert not {pid for pid in per_worker if Path(f"/proc/{pid}").exists()}, "a worker outlived the server"
    with ctx.db.read() as conn:
        recorded = set(conn.execute(select(usage_events.c.request_id)).scalars())
    # Requests from both workers' connections were acknowledged, and every one is stored.
    assert len({answered_by[int(request_id.split("-")[1])] for request_id in acknowledged}) == 2
    missing = set(acknowledged) - recorded
    assert not missing, f"{len(missing)} acknowledged events were lost, e.g. {sorted(missing)[:3]}"
    assert reconcile_ledger(ctx).ok
