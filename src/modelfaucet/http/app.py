"""The application factory. Nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..adapters.db.database import Database
from ..config import Settings
from ..services.context import ServiceContext, utcnow
from ..services.posting_engine import PostingEngine
from .errors import install_error_handlers
from .metrics import Metrics
from .middleware import EdgeMiddleware
from .ratelimit import RateLimitMiddleware


def _routers() -> list[APIRouter]:
    """Every resource's router, in the order the OpenAPI document lists them."""
    from .routers import (
        admin_adjustments,
        admin_audit,
        admin_catalog,
        admin_payouts,
        admin_reconciliation,
        admin_reports,
        admin_wallets,
        health,
        provider_keys,
        sessions,
        stripe_webhook,
        usage,
        user,
    )

    return [
        health.router,
        sessions.router,
        user.router,
        stripe_webhook.router,
        usage.router,
        provider_keys.router,
        admin_reconciliation.router,
        admin_wallets.router,
        admin_adjustments.router,
        admin_payouts.router,
        admin_catalog.router,
        admin_reports.router,
        admin_audit.router,
    ]


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> FastAPI:
    database = db if db is not None else Database.from_url(settings.database_url)
    owns_database = db is None

    ctx = ServiceContext(db=database, settings=settings, clock=clock)
    posting_engine = PostingEngine(ctx)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        # Acknowledged usage is posted before the process lets go of the database.
        await run_in_threadpool(posting_engine.close)
        if owns_database:
            database.dispose()

    app = FastAPI(
        title="ModelFaucet Billing & Settlement",
        version=__version__,
        description="Prepaid credits, usage rating, double-entry ledger, payouts (test mode).",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.usage_posting_engine = posting_engine
    app.state.metrics = Metrics()
    install_error_handlers(app)
    for router in _routers():
        app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["authorization", "content-type", "idempotency-key", "x-request-id"],
        )
    # Inside EdgeMiddleware, so a 429 still carries the request id and security headers.
    app.add_middleware(RateLimitMiddleware, per_minute=settings.rate_limit_per_minute)
    app.add_middleware(EdgeMiddleware, max_body_bytes=settings.max_body_bytes, metrics=app.state.metrics)
    return app
