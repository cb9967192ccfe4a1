"""Helpers for the usage tests: events, funded end users, posting sums."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from modelfaucet.adapters.db.tables import accounts, ledger_postings, usage_events
from modelfaucet.domain.adjustments import AdjustmentKind, Direction
from modelfaucet.domain.ledger import OwnerScope
from modelfaucet.domain.rating import RouteMode
from modelfaucet.services.apply_adjustment import AdjustWallet, apply_adjustment
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.record_usage import UsageEvent
from modelfaucet.services.seed import SeedResult


def event(request_id: str, **changes: Any) -> UsageEvent:
    values: dict[str, Any] = {
        "request_id": request_id,
        "public_app_id": "app_pub_demo",
        "external_user_id": "demo-user-1",
        "feature_key": "customer_reply",
        "route_mode": RouteMode.PLATFORM,
        "provider": "mock",
        "model": "mock-small",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cached_tokens": 0,
    }
    values.update(changes)
    return UsageEvent(**values)


def fund_end_user(ctx: ServiceContext, seeded: SeedResult, external_user_id: str, units: int) -> str:
    """Create an end user of the demo app with ``units`` of credit; return its wallet.

    The credit is an operator's adjustment, so the funding has a source row and an audit
    row like any real credit, and reconciliation's provenance checks hold."""
    with ctx.unit_of_work() as uow:
        user_id = uow.catalog.ensure_end_user(seeded.app_id, external_user_id)
        wallet = uow.ledger.ensure(OwnerScope.END_USER, user_id)
        uow.commit()
    if units:
        command = AdjustWallet(wallet, AdjustmentKind.ADJUSTMENT, Direction.CREDIT, units, "test funding")
        apply_adjustment(ctx, command, actor=Actor("test-funding"))
    return wallet


def balance(ctx: ServiceContext, account_id: str) -> int:
    with ctx.db.read() as conn:
        return int(conn.execute(select(accounts.c.balance_units).where(accounts.c.id == account_id)).scalar_one())


def usage_count(ctx: ServiceContext) -> int:
    with ctx.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(usage_events)).scalar_one())


def posting_count(ctx: ServiceContext, reason_prefix: str = "usage_") -> int:
    with ctx.db.read() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(ledger_postings)
                .where(ledger_postings.c.reason.startswith(reason_prefix))
            ).scalar_one()
        )


def postings_of(ctx: ServiceContext, transaction_id: str) -> list[tuple[str, int, str]]:
    with ctx.db.read() as conn:
        rows = conn.execute(
            select(ledger_postings.c.account_id, ledger_postings.c.amount_units, ledger_postings.c.reason)
            .where(ledger_postings.c.transaction_id == transaction_id)
            .order_by(ledger_postings.c.id)
        ).all()
    return [(row.account_id, int(row.amount_units), row.reason) for row in rows]
