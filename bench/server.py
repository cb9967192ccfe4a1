"""The benchmark server: the product app plus one bench-only route, run by uvicorn.

``python -m bench.server`` reads the same environment as ``modelfaucet serve`` and serves
``create_app(settings)`` with ``POST /bench/noop`` added: gateway-authenticated exactly as the usage route is, it reads
and parses the same JSON body as ``POST /v1/usage/events`` and answers a small JSON
document, through the same middleware stack. It is the ceiling of "HTTP + framework +
load generator" that B2/B4/B7 are compared against. The route exists only here, never in
the product API.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from modelfaucet.config import load_settings
from modelfaucet.http import server
from modelfaucet.http.app import create_app
from modelfaucet.http.routers.usage import FastGatewayActor


def bench_app() -> FastAPI:
    app = create_app(load_settings())

    async def noop(request: Request, _actor: FastGatewayActor) -> Any:
        body = json.loads(await request.body())
        return JSONResponse({"status": "noop", "request_id": body.get("request_id")}, status_code=201)

    app.add_api_route("/bench/noop", noop, methods=["POST"], include_in_schema=False)
    # Matched first: appended last, every no-op request was matched against every router of
    # the app before its own route (about 160 µs of CPU), which made the ceiling lower than
    # the usage route's own routing allows.
    app.router.routes.insert(0, app.router.routes.pop())
    server.freeze_startup_heap()  # as `modelfaucet serve` does in each serving process
    return app


def main() -> None:
    """Serve the bench app; several workers the way ``modelfaucet serve --workers`` does."""
    import os

    import uvicorn

    settings = load_settings()
    workers = int(os.environ.get("MODELFAUCET_BENCH_WORKERS", "1"))
    if workers > 1:
        # Several stateless API processes on one database, as in production: each its own
        # SO_REUSEPORT socket (MODELFAUCET_BENCH_SHARED_SOCKET=1: one socket all accept on).
        if os.environ.get("MODELFAUCET_BENCH_SHARED_SOCKET") == "1":
            sockets = [server.listen(settings.host, settings.port)]
        else:
            sockets = server.listen_all(settings.host, settings.port, workers)
        server.run(settings, sockets, workers=workers, app="bench.server:bench_app", factory=True)
        return
    uvicorn.run(bench_app(), host=settings.host, port=settings.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
