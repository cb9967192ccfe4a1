"""End-user read models (wallet, top-ups) and the top-up reconciliation check.

The check is listed in :func:`modelfaucet.services.reconcile.area_checks`, so every report
carries it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..adapters.db import ledger
from ..adapters.db.tables import stripe_topups
from ..domain.money import format_usd
from .context import ServiceContext
from .formatting import iso
from .sessions import SessionUser
from .wallets import wallet_summary

TOPUP_REFERENCE_TYPE = "stripe_topup"


def topup_summary(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "checkout_session_id": row.checkout_session_id,
        "checkout_url": row.checkout_url or "",
        "wallet_id": row.account_id,
        "amount_usd": format_usd(int(row.amount_units)),
        "currency": row.currency,
        "status": row.status,
        "created_at": iso(row.created_at),
        "credited_at": iso(row.credited_at) or None,
    }


def user_wallet(ctx: ServiceContext, user: SessionUser) -> dict[str, Any]:
    """The session user's own wallet — never anyone else's: the id comes from the session."""
    with ctx.db.read() as conn:
        row = ledger.get_account(conn, user.account_id)
    return wallet_summary(row)


def list_user_topups(ctx: ServiceContext, user: SessionUser, *, limit: int = 50) -> list[dict[str, Any]]:
    with ctx.db.read() as conn:
        rows = conn.execute(
            select(stripe_topups)
            .where(stripe_topups.c.end_user_id == user.end_user_id)
            .order_by(stripe_topups.c.created_at.desc(), stripe_topups.c.id)
            .limit(limit)
        ).all()
    return [topup_summary(row) for row in rows]
