"""Payout review (SPEC §9): run-mock, approve, mark-paid, cancel, mark-failed, and reads.

A payout is a pending transfer. ``run_mock_payouts`` creates one ``pending`` payout per
active developer whose payable balance reaches the threshold and who has no open payout,
and *reserves* its amount on the developer wallet: no money moves, but no later debit
(chargeback, adjustment) can spend it, because the posting engine never lets a wallet's
balance go below its reservation. ``mark_payout_paid`` posts the payment (developer
wallet → payout clearing, reason ``mock_payout_paid``) and releases the reservation;
``cancel_payout`` / ``mark_payout_failed`` only release it.

Every transition follows :mod:`modelfaucet.domain.payouts` (one table), runs in one
database transaction with the payout row locked, and writes its audit row in that same
transaction. Repeating approve / mark-paid answers the payout unchanged and writes nothing.

Concurrency: run-mock locks each candidate developer wallet (``FOR UPDATE``; SQLite
serialises writers anyway) and re-checks under the lock; the partial unique index
``uq_payouts_open_per_developer`` is the last line (the insert does nothing on conflict).
Transitions lock the payout row and update it conditionally on its status, so eight
concurrent mark-paid calls produce exactly one debit.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from ..adapters.db import audit, ledger
from ..adapters.db.tables import accounts, audit_log, developers, ledger_postings, payouts
from ..domain.identity import new_id
from ..domain.ledger import OwnerScope, Posting, Reason, SystemAccount, Transaction
from ..domain.money import format_usd
from ..domain.outcomes import Forbidden, InvalidState, LedgerInvariantViolation, NotFound
from ..domain.payouts import (
    OPEN_STATUSES,
    Decision,
    Effect,
    PayoutAction,
    PayoutStatus,
    decide,
    payable_units,
    refusal_message,
)
from .context import Actor, ServiceContext
from .formatting import iso

MOCK_PROVIDER = "mock"
_OPEN = sorted(str(status) for status in OPEN_STATUSES)


# --- run-mock ---------------------------------------------------------------------------


def run_mock_payouts(ctx: ServiceContext, *, actor: Actor, threshold_units: int | None = None) -> list[dict[str, Any]]:
    """Create and reserve one pending payout per eligible developer; return the new payouts."""
    threshold = ctx.settings.payout_threshold_units if threshold_units is None else threshold_units
    now = ctx.clock()
    hold_start = now - timedelta(days=ctx.settings.payout_hold_days)
    created: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    with ctx.db.transaction() as conn:
        for developer_id, account_id in _candidate_developers(conn):
            # Lock the wallet, then decide on what is committed now (a racing run-mock that
            # got here first has committed its payout, so it is seen below).
            wallet = ledger.get_account(conn, account_id, for_update=True)
            if _has_open_payout(conn, developer_id):
                continue
            held = _held_units(conn, account_id, since=hold_start) if ctx.settings.payout_hold_days else 0
            amount = payable_units(
                balance_units=int(wallet.balance_units),
                reserved_units=int(wallet.reserved_units),
                held_units=held,
            )
            if amount <= 0 or amount < threshold:
                continue
            payout_id = new_id()
            inserted = conn.execute(
                ctx.db.insert(payouts)
                .values(
                    id=payout_id,
                    developer_id=developer_id,
                    account_id=account_id,
                    amount_units=amount,
                    status=str(PayoutStatus.PENDING),
                    provider=MOCK_PROVIDER,
                    created_by=actor.name,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing()
                .returning(payouts.c.id)
            ).first()
            if inserted is None:
                continue  # another run-mock opened one first (the unique index said so)
            ledger.change_reserved(conn, account_id, amount, now=now)
            audits.append(
                {
                    "resource_id": payout_id,
                    "amount_units": amount,
                    "details": {
                        "developer_id": developer_id,
                        "wallet_id": account_id,
                        "threshold_usd": format_usd(threshold),
                        "held_usd": format_usd(held),
                    },
                }
            )
            created.append(payout_summary(_load(conn, payout_id)))
        # Audit rows last: the audit chain lock must never be held while waiting for a
        # wallet lock (see adapters/db/audit.py), so none is written inside the loop.
        for entry in audits:
            audit.record(
                conn,
                now=now,
                actor=actor.name,
                action="payout.create",
                resource_type="payout",
                after_status=str(PayoutStatus.PENDING),
                request_id=actor.request_id,
                **entry,
            )
    return created


def _candidate_developers(conn: Connection) -> list[tuple[str, str]]:
    """Active developers with a wallet, in wallet-id order (the lock order)."""
    rows = conn.execute(
        select(developers.c.id, accounts.c.id.label("account_id"))
        .select_from(
            developers.join(
                accounts,
                and_(
                    accounts.c.owner_scope == str(OwnerScope.DEVELOPER),
                    accounts.c.owner_id == developers.c.id,
                ),
            )
        )
        .where(developers.c.status == "active")
        .where(accounts.c.balance_units - accounts.c.reserved_units > 0)
        .order_by(accounts.c.id)
    ).all()
    return [(row.id, row.account_id) for row in rows]


def _has_open_payout(conn: Connection, developer_id: str) -> bool:
    found = conn.execute(
        select(payouts.c.id).where(and_(payouts.c.developer_id == developer_id, payouts.c.status.in_(_OPEN)))
    ).first()
    return found is not None


def _held_units(conn: Connection, account_id: str, *, since: datetime) -> int:
    """Credits to the wallet within the hold period: not payable yet."""
    total = conn.execute(
        select(func.coalesce(func.sum(ledger_postings.c.amount_units), 0)).where(
            and_(
                ledger_postings.c.account_id == account_id,
                ledger_postings.c.amount_units > 0,
                ledger_postings.c.created_at > since,
            )
        )
    ).scalar_one()
    return int(total)


# --- transitions ------------------------------------------------------------------------


def approve_payout(
    ctx: ServiceContext, payout_id: str, *, actor: Actor, operator_note: str | None = None
) -> dict[str, Any]:
    return _transition(ctx, payout_id, PayoutAction.APPROVE, actor=actor, note=operator_note)


def mark_payout_paid(ctx: ServiceContext, payout_id: str, *, actor: Actor) -> dict[str, Any]:
    return _transition(ctx, payout_id, PayoutAction.MARK_PAID, actor=actor, note=None)


def cancel_payout(
    ctx: ServiceContext, payout_id: str, *, actor: Actor, operator_note: str | None = None
) -> dict[str, Any]:
    return _transition(ctx, payout_id, PayoutAction.CANCEL, actor=actor, note=operator_note)


def mark_payout_failed(
    ctx: ServiceContext, payout_id: str, *, actor: Actor, operator_note: str | None = None
) -> dict[str, Any]:
    return _transition(ctx, payout_id, PayoutAction.MARK_FAILED, actor=actor, note=operator_note)


def _transition(
    ctx: ServiceContext, payout_id: str, action: PayoutAction, *, actor: Actor, note: str | None
) -> dict[str, Any]:
    now = ctx.clock()
    with ctx.db.transaction() as conn:
        payout = _load(conn, payout_id, for_update=True)
        decision = decide(payout.status, action)
        if decision.effect is Effect.REFUSED:
            raise InvalidState(
                refusal_message(payout.status, action),
                details={"payout_id": payout_id, "status": payout.status, "action": str(action)},
            )
        if decision.effect is Effect.UNCHANGED:
            return payout_summary(payout)
        if action is PayoutAction.APPROVE:
            _check_maker_checker(ctx, payout, actor)
        _apply(conn, ctx, payout, decision, action, actor=actor, note=note, now=now)
        return payout_summary(_load(conn, payout_id))


def _check_maker_checker(ctx: ServiceContext, payout: Any, actor: Actor) -> None:
    if ctx.settings.payout_require_distinct_approver and actor.name == payout.created_by:
        raise Forbidden(
            f"Maker-checker: operator {actor.name!r} created this payout and cannot also approve it; "
            "another named operator must approve it.",
            details={"payout_id": payout.id, "created_by": payout.created_by, "approver": actor.name},
        )


def _apply(
    conn: Connection,
    ctx: ServiceContext,
    payout: Any,
    decision: Decision,
    action: PayoutAction,
    *,
    actor: Actor,
    note: str | None,
    now: datetime,
) -> None:
    amount = int(payout.amount_units)
    values: dict[str, Any] = {"status": str(decision.status_after), "updated_at": now}
    if decision.releases_reservation:
        ledger.change_reserved(conn, payout.account_id, -amount, now=now)
    if decision.posts_payment:
        clearing = ledger.ensure_account(
            conn, ctx.db.insert, OwnerScope.SYSTEM, SystemAccount.PAYOUT_CLEARING.value, now=now
        )
        reason = Reason.MOCK_PAYOUT_PAID.value
        values["transaction_id"] = ledger.post(
            conn,
            Transaction.of(
                reason,
                [
                    Posting.debit(payout.account_id, amount, reason),
                    Posting.credit(clearing, amount, reason),
                ],
                reference_type="payout",
                reference_id=payout.id,
            ),
            now=now,
        )
        values["provider_payout_id"] = "po_mock_" + secrets.token_hex(12)
    if action is PayoutAction.APPROVE:
        values["approved_by"] = actor.name
        values["operator_note"] = note
    elif note is not None:
        values["operator_note"] = note
    changed = conn.execute(
        update(payouts)
        .where(and_(payouts.c.id == payout.id, payouts.c.status == str(decision.status_before)))
        .values(**values)
    )
    if changed.rowcount != 1:
        # The row is locked, so this cannot happen; if it does, write nothing.
        raise LedgerInvariantViolation(f"payout {payout.id} changed status under its lock")
    audit.record(
        conn,
        now=now,
        actor=actor.name,
        action=f"payout.{action}",
        resource_type="payout",
        resource_id=payout.id,
        before_status=str(decision.status_before),
        after_status=str(decision.status_after),
        amount_units=amount,
        note=note,
        request_id=actor.request_id,
        details={
            "developer_id": payout.developer_id,
            "wallet_id": payout.account_id,
            "transaction_id": values.get("transaction_id"),
            "provider_payout_id": values.get("provider_payout_id"),
        },
    )


# --- reads ------------------------------------------------------------------------------


def payout_summary(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "developer_id": row.developer_id,
        "wallet_id": row.account_id,
        "amount_usd": format_usd(int(row.amount_units)),
        "status": row.status,
        "provider": row.provider,
        "provider_payout_id": row.provider_payout_id,
        "created_by": row.created_by,
        "approved_by": row.approved_by,
        "operator_note": row.operator_note,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def list_payouts(ctx: ServiceContext, *, status: PayoutStatus | None = None, limit: int = 100) -> list[dict[str, Any]]:
    stmt = select(payouts).order_by(payouts.c.created_at.desc(), payouts.c.id).limit(limit)
    if status is not None:
        stmt = stmt.where(payouts.c.status == str(status))
    with ctx.db.read() as conn:
        return [payout_summary(row) for row in conn.execute(stmt)]


def get_payout(ctx: ServiceContext, payout_id: str) -> dict[str, Any]:
    """The payout with its history: every audit row about it, oldest first."""
    with ctx.db.read() as conn:
        payout = _load(conn, payout_id)
        history = conn.execute(
            select(audit_log)
            .where(and_(audit_log.c.resource_type == "payout", audit_log.c.resource_id == payout_id))
            .order_by(audit_log.c.id)
        ).all()
    detail = payout_summary(payout)
    detail["history"] = [
        {
            "at": iso(entry.created_at),
            "actor": entry.actor,
            "action": entry.action,
            "before_status": entry.before_status,
            "after_status": entry.after_status,
            "amount_usd": None if entry.amount_units is None else format_usd(int(entry.amount_units)),
            "note": entry.note,
            "request_id": entry.request_id,
        }
        for entry in history
    ]
    return detail


def _load(conn: Connection, payout_id: str, *, for_update: bool = False) -> Any:
    stmt = select(payouts).where(payouts.c.id == payout_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound("Payout was not found.", details={"payout_id": payout_id})
    return row
