"""Operations: liveness, readiness (both also answer HEAD), metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ...services.gauges import read_gauges
from ..deps import Context
from ..metrics import Metrics

router = APIRouter(tags=["operations"])
log = logging.getLogger("modelfaucet.http")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    migrations: str


# HEAD mirrors GET (load balancers and uptime checks probe with HEAD); the server sends no
# body. Left out of the OpenAPI document, which lists each operation once.
@router.get("/health", response_model=Health)
@router.head("/health", include_in_schema=False)
def health() -> Health:
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
@router.head("/ready", include_in_schema=False)
async def ready(ctx: Context) -> Response:
    reachable = await run_in_threadpool(ctx.db.ping)
    migrated = reachable and await run_in_threadpool(ctx.db.is_migrated)
    body = Readiness(
        status="ready" if migrated else "not_ready",
        database="reachable" if reachable else "unreachable",
        migrations="current" if migrated else ("unknown" if not reachable else "pending"),
    )
    return JSONResponse(body.model_dump(), status_code=200 if migrated else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request, ctx: Context) -> Response:
    watched: Metrics = request.app.state.metrics
    try:
        watched.refresh(read_gauges(ctx), now=ctx.clock())
    except Exception as exc:  # the database is down: the HTTP counters matter most right now
        log.warning("metrics: stored gauges not refreshed (%s); serving the last values", type(exc).__name__)
    return Response(watched.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
