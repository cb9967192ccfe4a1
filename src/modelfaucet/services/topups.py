"""End-user read models (wallet, top-ups) and the top-up reconciliation check.

The check is listed in :func:`modelfaucet.services.reconcile.area_checks`, so every report
carries it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, select

from ..adapters.db import ledger
from ..adapters.db.tables import ledger_postings, ledger_transactions, stripe_topups
from ..domain.ledger import AccountState, OwnerScope, Reason, SystemAccount
from .context import ServiceContext
from .reconcile import MAX_LISTED, CheckResult
from .repositories import TopupRecord
from .sessions import SessionUser


def user_wallet(ctx: ServiceContext, user: SessionUser) -> AccountState:
    """The session user's own wallet — never anyone else's: the id comes from the session."""
    with ctx.reader() as uow:
        return uow.ledger.require(user.account_id)


def list_user_topups(ctx: ServiceContext, user: SessionUser, *, limit: int = 50) -> list[TopupRecord]:
    """The session user's own top-ups, newest first."""
    with ctx.reader() as uow:
        return uow.topups.for_end_user(user.end_user_id, limit=limit)


def credited_topups_have_their_postings(conn: Connection) -> CheckResult:
    """Each credited top-up has one transaction: +amount on its wallet, −amount on Stripe
    clearing, nothing else; and every ``stripe_checkout_topup`` transaction belongs to one."""
    clearing = ledger.account_id_for(conn, OwnerScope.SYSTEM, SystemAccount.STRIPE_CLEARING.value)
    postings: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for row in conn.execute(
        select(ledger_postings.c.transaction_id, ledger_postings.c.account_id, ledger_postings.c.amount_units)
        .join(ledger_transactions, ledger_transactions.c.id == ledger_postings.c.transaction_id)
        .where(ledger_transactions.c.reason == Reason.STRIPE_CHECKOUT_TOPUP.value)
    ):
        postings[row.transaction_id].append((row.account_id, int(row.amount_units)))

    offending: list[dict[str, Any]] = []
    claimed: set[str] = set()
    for topup in conn.execute(
        select(
            stripe_topups.c.id,
            stripe_topups.c.account_id,
            stripe_topups.c.amount_units,
            stripe_topups.c.transaction_id,
        )
        .where(stripe_topups.c.status == "credited")
        .order_by(stripe_topups.c.id)
    ):
        amount = int(topup.amount_units)
        expected = sorted([(topup.account_id, amount), (clearing or "", -amount)])
        problem: str | None = None
        if topup.transaction_id is None:
            problem = "credited top-up has no ledger transaction"
        elif topup.transaction_id in claimed:
            problem = "ledger transaction is shared with another top-up"
        elif sorted(postings.get(topup.transaction_id, [])) != expected:
            problem = "ledger postings differ from wallet credit + Stripe clearing debit of the amount"
        if topup.transaction_id is not None:
            claimed.add(topup.transaction_id)
        if problem is not None:
            offending.append({"topup_id": topup.id, "transaction_id": topup.transaction_id, "problem": problem})
    for transaction_id in sorted(set(postings) - claimed):
        offending.append(
            {
                "topup_id": None,
                "transaction_id": transaction_id,
                "problem": "stripe_checkout_topup transaction without a credited top-up",
            }
        )
    return CheckResult(
        name="credited_topups_posted_once",
        ok=not offending,
        description=(
            "Every credited top-up has exactly one transaction crediting its wallet and debiting "
            "Stripe clearing by its amount, and no top-up transaction lacks a credited top-up."
        ),
        offending=offending[:MAX_LISTED],
        offending_count=len(offending),
    )
