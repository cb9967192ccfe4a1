"""A small HTTP/1.1 load generator: N keep-alive connections on loopback, one request in
flight per connection, latencies per request.

Deliberately minimal (pre-encoded requests, ``asyncio`` streams, uvloop when installed) so
its own cost stays far below the server's; B2 measures its ceiling against the no-op route
in the same run. Bounded: it sends exactly the requests it is given, then stops.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def request_bytes(method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _connection(port: int, requests: Iterator[bytes], result: LoadResult) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for raw in requests:
            started = time.perf_counter()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            result.latencies.append(time.perf_counter() - started)
            result.statuses[status] = result.statuses.get(status, 0) + 1
    finally:
        writer.close()


def run_load(port: int, requests: list[bytes], clients: int) -> LoadResult:
    """Send ``requests`` over ``clients`` keep-alive connections; every request is sent once."""
    feed = iter(requests)
    result = LoadResult(len(requests), 0.0)

    async def main() -> None:
        started = time.perf_counter()
        await asyncio.gather(*(_connection(port, feed, result) for _ in range(clients)))
        result.seconds = time.perf_counter() - started

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]

    def peak_rss_kb(self) -> int:
        """VmHWM of the server process: its peak resident set so far."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0


@contextmanager
def bench_server(env: dict[str, str], log_path: Path) -> Iterator[Server]:
    """``python -m bench.server`` on a free loopback port; stopped (SIGINT, then kill) after."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "MODELFAUCET_", "ADMIN_"))}
    full_env.update(env)
    full_env.update({"HOST": "127.0.0.1", "PORT": str(port), "MODELFAUCET_RATE_LIMIT_PER_MINUTE": "0"})
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH", "")]))
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.server"], env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
        try:
            _wait_ready(port, process, log_path)
            yield Server(port, process)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _wait_ready(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bench server exited early: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"bench server did not become ready: {log_path.read_text()[-2000:]}")


def expect_statuses(result: LoadResult, allowed: Callable[[int], bool], what: str) -> None:
    bad = {status: n for status, n in result.statuses.items() if not allowed(status)}
    if bad:
        raise RuntimeError(f"{what}: unexpected statuses {bad}")
