"""Per-IP, per-route rate limits (429 ``rate_limited`` with ``retry-after``).

A plain ASGI middleware keyed by request path, so it guards the limited routes whether or
not their routers are installed. Each (route, client address) pair has a token bucket of
``per_minute`` tokens refilled continuously; an empty bucket answers 429 before the
application runs (nothing is read or written).

The buckets live in process memory. That is a deliberate trade-off: a limit is abuse
protection, not a correctness property, so with N API processes the effective limit is at
most N × the configured one.

The client address (:func:`client_address`) is the socket peer. ``X-Forwarded-For`` is
believed only when that peer is a configured proxy (``FORWARDED_ALLOW_IPS``, none by
default — ``modelfaucet serve`` gives uvicorn the same list): then the client is the
right-most address in the header that is not itself a configured proxy. Anyone else can
write any ``X-Forwarded-For`` they like, so from them the header is ignored.
"""

from __future__ import annotations

import ipaddress
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_body

# The routes guarded by default: session creation, checkout creation, the Stripe webhook and
# the web sign-in forms (each refused sign-in writes an audit row: the limit bounds what a
# client guessing tokens can make the service write).
LIMITED_ROUTES = (
    ("POST", "/v1/sessions"),
    ("POST", "/v1/user/stripe/checkout-sessions"),
    ("POST", "/v1/stripe/webhook"),
    ("POST", "/console/sign-in"),
    ("POST", "/portal/sign-in"),
)
MAX_TRACKED_CLIENTS = 50_000
MAX_CLIENT_KEY_CHARS = 64  # a forwarded "address" is caller text: bound what a bucket key holds


class TrustedProxies:
    """The peers whose ``X-Forwarded-For`` is believed: addresses, networks, or ``*`` for any."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        listed = tuple(entries)
        self.any = "*" in listed
        self.networks = tuple(ipaddress.ip_network(entry, strict=False) for entry in listed if entry != "*")

    def __bool__(self) -> bool:
        return self.any or bool(self.networks)

    def __contains__(self, host: str) -> bool:
        if self.any:
            return True
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def client_address(scope: Scope, trusted: TrustedProxies) -> str:
    """Who is calling: the socket peer, or what a trusted proxy peer says in ``X-Forwarded-For``."""
    client = scope.get("client")
    peer = str(client[0]) if client else "unknown"
    if not trusted or peer not in trusted:
        return peer
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    forwarded = ",".join(value.decode("latin-1") for key, value in headers if key == b"x-forwarded-for")
    hops = [hop.strip(" \t") for hop in forwarded.split(",") if hop.strip(" \t")]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop[:MAX_CLIENT_KEY_CHARS]
    return hops[0][:MAX_CLIENT_KEY_CHARS] if hops else peer


class TokenBuckets:
    """Token buckets per key, bounded in memory (least recently used keys are forgotten)."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate_per_second = per_minute / 60.0
        self.clock = clock
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: tuple[str, str]) -> float:
        """Take one token; 0.0 if allowed, else the seconds until a token is available."""
        now = self.clock()
        with self._lock:
            tokens, updated = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - updated) * self.rate_per_second)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate_per_second
            while len(self._buckets) > MAX_TRACKED_CLIENTS:
                self._buckets.popitem(last=False)
        return wait


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        per_minute: int,
        routes: Mapping[tuple[str, str], int] | None = None,
        trusted_proxies: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``per_minute`` 0 disables limiting; ``routes`` may override the limit per route;
        ``trusted_proxies`` are the peers whose ``X-Forwarded-For`` names the client."""
        self.app = app
        self.trusted_proxies = TrustedProxies(trusted_proxies)
        limits = dict(routes) if routes is not None else {route: per_minute for route in LIMITED_ROUTES}
        self.buckets = {route: TokenBuckets(limit, clock=clock) for route, limit in limits.items() if limit > 0}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = (str(scope.get("method", "")).upper(), str(scope.get("path", "")).rstrip("/") or "/")
            buckets = self.buckets.get(route)
            if buckets is not None:
                wait = buckets.take((route[1], client_address(scope, self.trusted_proxies)))
                if wait > 0:
                    await _too_many(scope, send, max(1, math.ceil(wait)))
                    return
        await self.app(scope, receive, send)


async def _too_many(scope: Scope, send: Send, retry_after: int) -> None:
    request_id = str(scope.get("state", {}).get("request_id", ""))
    body = json.dumps(
        error_body(
            "rate_limited",
            "Too many requests; retry later.",
            request_id,
            {"retry_after_seconds": retry_after},
        )
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
