"""Database outage: the server's connection to PostgreSQL is cut mid-load, then restored.

The server reaches PostgreSQL through a small TCP proxy on 127.0.0.1 that this test owns
(the real PostgreSQL, shared with other test runs, is never stopped). Cutting the proxy
closes every live connection and refuses new ones; while it is down:

- requests fail fast with 503 ``service_unavailable`` and a clear message (no hang, no
  500, no stack trace), ``/ready`` answers 503 ``not_ready``;
- nothing is half-written.

When the proxy comes back the service recovers by itself (the pool pings a connection idle
for over a second at checkout, and a disconnect invalidates the pool), with no
restart, and reconciliation is clean.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from modelfaucet.adapters.db.engine import normalise_url
from modelfaucet.config import Settings
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.seed import SeedResult
from tests.conftest import ADMIN_TOKEN, GATEWAY_TOKEN, free_port, start_live_server, with_settings
from tests.integration.usage_support import fund_end_user
from tests.reliability.support import LIVE_ENV, invariant_violations, usage_body

GATEWAY = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# A request during the outage must be answered within this (connect_timeout is 5 s).
FAIL_FAST_SECONDS = 8.0


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``cut()`` drops everything, ``restore()`` reopens."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.connections = 0

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            live = list(self._sockets)
            self._sockets.clear()
        if listener is not None:
            listener.close()
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets.update({client, upstream})
                self.connections += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxy(db_url: str) -> Iterator[TcpProxy]:
    if db_url.startswith("sqlite"):
        pytest.skip("a database outage is a networked-database failure: PostgreSQL only")
    url = make_url(normalise_url(db_url))
    tcp = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    tcp.restore()
    yield tcp
    tcp.cut()


def _proxied(db_url: str, port: int) -> str:
    url = make_url(normalise_url(db_url)).set(host="127.0.0.1", port=port)
    return url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")


def test_a_database_outage_fails_fast_with_503_and_recovers_by_itself(  # noqa: PLR0917 - fixtures
    proxy: TcpProxy, db_url: str, settings: Settings, ctx: ServiceContext, seeded: SeedResult, tmp_path: Path
) -> None:
    wallet = fund_end_user(ctx, seeded, "outage-user", 100 * 100_000_000)
    server = start_live_server(with_settings(settings, database_url=_proxied(db_url, proxy.port)), tmp_path, LIVE_ENV)
    counter = iter(range(1_000_000))
    slowest = [0.0]

    def one_request(index: int) -> tuple[int, str | None]:
        started = time.monotonic()
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            if index % 3 == 0:
                response = client.post(
                    f"/v1/admin/wallets/{wallet}/adjustments",
                    headers=ADMIN,
                    json={"direction": "debit", "amount_usd": "0.01000000", "reason": "outage"},
                )
            elif index % 3 == 1:
                response = client.post(
                    "/v1/usage/events", headers=GATEWAY, json=usage_body(f"outage-{next(counter)}", "outage-user")
                )
            else:
                response = client.get(f"/v1/admin/wallets/{wallet}", headers=ADMIN)
        slowest[0] = max(slowest[0], time.monotonic() - started)
        code = response.json().get("error", {}).get("code") if response.status_code >= 400 else None
        return response.status_code, code

    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            before = Counter(pool.map(one_request, range(60)))
            assert set(before) == {(201, None), (200, None)}, before

            proxy.cut()
            slowest[0] = 0.0
            during = Counter(pool.map(one_request, range(60)))
            assert set(during) == {(503, "service_unavailable")}, during
            slowest_during = slowest[0]
            assert slowest_during < FAIL_FAST_SECONDS, f"a request took {slowest_during:.1f}s during the outage"
            ready = httpx.get(f"{server.base_url}/ready", timeout=FAIL_FAST_SECONDS)
            assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
            sample = httpx.post(
                f"{server.base_url}/v1/usage/events", headers=GATEWAY, json=usage_body("outage-msg", "outage-user")
            ).json()
            assert sample["error"]["message"] == "The database is unavailable; retry shortly."
            assert invariant_violations(ctx) == []  # the direct connection still works: nothing half-written

            proxy.restore()
            deadline = time.monotonic() + 15
            while httpx.get(f"{server.base_url}/ready", timeout=10).status_code != 200:
                assert time.monotonic() < deadline, "the service did not recover by itself"
                time.sleep(0.2)
            after = Counter(pool.map(one_request, range(30)))
            assert set(after) == {(201, None), (200, None)}, after
    finally:
        server.stop()
    assert invariant_violations(ctx) == []
    print(
        f"\ndatabase outage: before {sum(before.values())} ok, during {sum(during.values())} × 503 "
        f"(slowest {slowest_during:.2f}s), after {sum(after.values())} ok"
    )
