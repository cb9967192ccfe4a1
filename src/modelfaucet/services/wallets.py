"""Read models of wallets for operators."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..adapters.db import ledger
from ..adapters.db.tables import accounts
from ..domain.ledger import OwnerScope
from ..domain.money import format_usd
from .context import ServiceContext
from .formatting import iso


def wallet_summary(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "owner_scope": row.owner_scope,
        "owner_id": row.owner_id,
        "balance_usd": format_usd(int(row.balance_units)),
        "reserved_usd": format_usd(int(row.reserved_units)),
        "available_usd": format_usd(int(row.balance_units) - int(row.reserved_units)),
    }


def list_wallets(
    ctx: ServiceContext, *, owner_scope: OwnerScope | None, owner_id: str | None, limit: int
) -> list[dict[str, Any]]:
    stmt = select(accounts).order_by(accounts.c.owner_scope, accounts.c.owner_id).limit(limit)
    if owner_scope is not None:
        stmt = stmt.where(accounts.c.owner_scope == str(owner_scope))
    if owner_id is not None:
        stmt = stmt.where(accounts.c.owner_id == owner_id)
    with ctx.db.read() as conn:
        return [wallet_summary(row) for row in conn.execute(stmt)]


def wallet_detail(ctx: ServiceContext, wallet_id: str) -> dict[str, Any]:
    with ctx.db.read() as conn:
        row = ledger.get_account(conn, wallet_id)
        entries = ledger.recent_postings(conn, wallet_id)
    detail = wallet_summary(row)
    detail["recent_entries"] = [
        {
            "posting_id": entry.posting_id,
            "transaction_id": entry.transaction_id,
            "amount_usd": format_usd(int(entry.amount_units)),
            "reason": entry.reason,
            "created_at": iso(entry.created_at),
        }
        for entry in entries
    ]
    return detail
