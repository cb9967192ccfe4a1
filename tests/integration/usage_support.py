"""Helpers for the usage tests: events, funded end users, posting sums."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from modelfaucet.adapters.db import ledger
from modelfaucet.adapters.db.repositories.catalog import SqlCatalog
from modelfaucet.adapters.db.tables import accounts, ledger_postings, usage_events
from modelfaucet.domain.ledger import OwnerScope, Posting, Reason, SystemAccount, Transaction
from modelfaucet.domain.rating import RouteMode
from modelfaucet.services.context import ServiceContext
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
    """Create an end user of the demo app with ``units`` of opening balance; return its wallet."""
    now = ctx.clock()
    with ctx.db.transaction() as conn:
        user_id = SqlCatalog(conn, now).ensure_end_user(seeded.app_id, external_user_id)
        wallet = ledger.ensure_account(conn, ctx.db.insert, OwnerScope.END_USER, user_id, now=now)
        equity = ledger.ensure_account(conn, ctx.db.insert, OwnerScope.SYSTEM, SystemAccount.SEED_EQUITY, now=now)
        if units:
            reason = Reason.SEED_OPENING_BALANCE.value
            ledger.post(
                conn,
                Transaction.of(reason, [Posting.credit(wallet, units, reason), Posting.debit(equity, units, reason)]),
                now=now,
            )
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
