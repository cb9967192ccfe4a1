"""Plain ASGI middleware: request ids, body limits, security headers, metrics.

Written against ASGI directly (not BaseHTTPMiddleware) so it adds no task per request and
can refuse a body before the application reads it: one larger than the size limit (413), or
one that :mod:`modelfaucet.http.json_guard` refuses — nested deeper than 64 levels or holding
an unpaired UTF-16 surrogate escape — with 400 ``invalid_request``, so no route (and no hand
parser such as the usage or webhook route's) ever sees it and nothing is written.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..domain.identity import random_hex
from . import json_guard
from .errors import error_body
from .metrics import Metrics, route_label

log = logging.getLogger("modelfaucet.http")
# One line per request: id, method, route template (never the path as sent: it may carry
# ids, and the query string could carry anything), status, duration. No header, no body.
access_log = logging.getLogger("modelfaucet.access")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
# The docs pages load only same-origin files (routers/docs.py). Swagger UI sets element
# styles from script (allowed) and draws its icons as data: images; ReDoc injects <style>
# elements (styled-components) and searches in a blob: web worker.
_DOCS_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_REDOC_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    b"connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
CSP_BY_PATH = {"/docs": _DOCS_CSP, "/redoc": _REDOC_CSP}
# The console and portal (http/web/): same-origin script and style only, no inline either;
# forms post to the same origin only.
WEB_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
WEB_PREFIXES = ("/console", "/portal", "/web/")


def csp_for(path: str) -> bytes:
    if path.startswith(WEB_PREFIXES):
        return WEB_CSP
    return CSP_BY_PATH.get(path, API_CSP)


def new_request_id() -> str:
    return "req_" + random_hex(12)


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header_id = request_id.encode()
        started = time.perf_counter()
        status_holder = [500]
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                status_holder[0] = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", header_id))
                headers.extend(SECURITY_HEADERS)
                headers.append((b"content-security-policy", csp_for(scope.get("path", ""))))
                message["headers"] = headers
            await send(message)

        declared = _content_length(scope)
        try:
            if declared is not None and declared > self.max_body_bytes:
                await _send_json(send_with_headers, 413, _too_large_body(request_id, self.max_body_bytes))
                return
            body_receive = receive
            if scope.get("method") in _BODY_METHODS:
                # Read the (bounded) body before the application sees it, so an oversized
                # chunked body is refused here with 413 instead of failing deep inside.
                buffered = await _read_bounded(receive, self.max_body_bytes)
                if buffered is None:
                    await _send_json(send_with_headers, 413, _too_large_body(request_id, self.max_body_bytes))
                    return
                problem = json_guard.refusal(b"".join(m.get("body", b"") for m in buffered))
                if problem is not None:
                    await _send_json(send_with_headers, 400, error_body("invalid_request", problem, request_id))
                    return
                body_receive = _replay(buffered, receive)
            try:
                await self.app(scope, body_receive, send_with_headers)
            except Exception as exc:
                # Anything that escaped the application's handlers is a bug: log it with the
                # request id, answer a bare 500 (no trace, no detail) if nothing was sent yet.
                log.error("unhandled error %s", type(exc).__name__, exc_info=exc, extra={"request_id": request_id})
                if response_started:
                    raise
                body = error_body("internal_error", "An internal error occurred.", request_id)
                await _send_json(send_with_headers, 500, body)
        finally:
            path = route_label(scope)
            method = scope.get("method", "GET")
            elapsed = time.perf_counter() - started
            self.metrics.observe(method, path, status_holder[0], elapsed)
            if access_log.isEnabledFor(logging.INFO):
                _log_request(request_id, method, path, status_holder[0], elapsed)


def _log_request(request_id: str, method: str, route: str, status: int, elapsed: float) -> None:
    duration_ms = round(elapsed * 1000, 1)
    fields = {"request_id": request_id, "method": method, "route": route, "status": status, "duration_ms": duration_ms}
    access_log.info("%s %s %d %.1fms %s", method, route, status, duration_ms, request_id, extra=fields)


def _incoming_request_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _VALID_REQUEST_ID.fullmatch(candidate) else None
    return None


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            # bytes.isdigit() is ASCII only; int() alone would also take b" 12" or b"1_2".
            return int(value) if value.isdigit() and len(value) <= 18 else None
    return None


def _too_large_message(limit: int) -> str:
    return f"The request body is larger than the limit of {limit} bytes."


def _too_large_body(request_id: str, limit: int) -> dict[str, Any]:
    return error_body("invalid_request", _too_large_message(limit), request_id)


async def _read_bounded(receive: Receive, limit: int) -> list[Message] | None:
    """All request-body messages, or None once they exceed ``limit`` bytes."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay_receive() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay_receive


async def _send_json(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
