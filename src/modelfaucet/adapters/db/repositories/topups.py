"""Stripe Checkout top-ups."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, exists, func, select, update

from ....domain.holds import HoldStatus
from ....domain.outcomes import LedgerInvariantViolation
from ....domain.reversals import Movement, ReversalKind, ReversalStatus
from ....domain.topups import TopupStatus
from ....services.repositories import NewTopup, ReversalPostingRecord, ReversalRecord, TopupRecord
from ..bulk import upsert_factory
from ..tables import holds, stripe_reversal_postings, stripe_reversals, stripe_topups


def _record(row: Any) -> TopupRecord:
    return TopupRecord(
        id=row.id,
        checkout_session_id=row.checkout_session_id,
        account_id=row.account_id,
        end_user_id=row.end_user_id,
        amount_units=int(row.amount_units),
        amount_cents=int(row.amount_cents),
        currency=row.currency,
        status=TopupStatus(row.status),
        checkout_url=row.checkout_url or "",
        created_at=row.created_at,
        credited_at=row.credited_at,
        transaction_id=row.transaction_id,
        last_event_id=row.last_event_id,
        payment_intent_id=row.payment_intent_id,
        wallet_has_due_holds=_flag(row._mapping.get("wallet_has_due_holds")),
    )


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)  # SQLite answers EXISTS with 0 or 1


def _reversal(row: Any) -> ReversalRecord:
    return ReversalRecord(
        id=row.id,
        kind=ReversalKind(row.kind),
        stripe_object_id=row.stripe_object_id,
        topup_id=row.topup_id,
        account_id=row.account_id,
        status=ReversalStatus(row.status),
        amount_cents=int(row.amount_cents),
        wallet_units=int(row.wallet_units),
        uncollected_units=int(row.uncollected_units),
        last_event_id=row.last_event_id,
    )


def _reversal_posting(row: Any) -> ReversalPostingRecord:
    return ReversalPostingRecord(
        id=row.id,
        reversal_id=row.reversal_id,
        movement=Movement(row.movement),
        wallet_units=int(row.wallet_units),
        uncollected_units=int(row.uncollected_units),
        amount_cents_after=int(row.amount_cents_after),
        event_id=row.event_id,
        transaction_id=row.transaction_id,
    )


# Built once (statement construction and its cache key cost a webhook credit's CPU):
# the parameters are bound per call.
_BY_SESSION = select(stripe_topups).where(stripe_topups.c.checkout_session_id == bindparam("session_key"))
# Locked for a decision that may credit the wallet: whether the wallet has overdue holds
# comes with it (the credit expires them first, SPEC §18), one statement instead of two.
# Holds become overdue with time, never by another writer, so reading it here, at the
# unit of work's time, is as good as reading it after.
_WALLET_HAS_DUE_HOLDS = (
    exists()
    .where(
        holds.c.account_id == stripe_topups.c.account_id,
        holds.c.status == HoldStatus.HELD.value,
        holds.c.expires_at <= bindparam("due_by", type_=holds.c.expires_at.type),
    )
    .correlate(stripe_topups)
    .label("wallet_has_due_holds")
)
_BY_SESSION_LOCKED = _BY_SESSION.add_columns(_WALLET_HAS_DUE_HOLDS).with_for_update(of=stripe_topups)
# SET takes the columns the parameters name (status, last_event_id, updated_at, …).
_MOVE = update(stripe_topups).where(
    (stripe_topups.c.id == bindparam("topup_key")) & (stripe_topups.c.status == bindparam("status_before"))
)


class SqlTopups:
    """Implements :class:`modelfaucet.services.repositories.TopupRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    def add_pending(self, topup: NewTopup) -> bool:
        inserted = self.connection.execute(
            upsert_factory(self.connection)(stripe_topups)
            .values(
                id=topup.id,
                checkout_session_id=topup.checkout_session_id,
                account_id=topup.account_id,
                end_user_id=topup.end_user_id,
                amount_units=topup.amount_units,
                amount_cents=topup.amount_cents,
                currency=topup.currency,
                status=TopupStatus.PENDING.value,
                checkout_url=topup.checkout_url,
                created_at=self.now,
                updated_at=self.now,
            )
            .on_conflict_do_nothing(index_elements=["checkout_session_id"])
            .returning(stripe_topups.c.id)
        ).first()
        # rowcount is not reliable for INSERT … ON CONFLICT on every driver; RETURNING is.
        return inserted is not None

    def by_session(self, checkout_session_id: str, *, for_update: bool = False) -> TopupRecord | None:
        if for_update:
            params = {"session_key": checkout_session_id, "due_by": self.now}
            row = self.connection.execute(_BY_SESSION_LOCKED, params).first()
        else:
            row = self.connection.execute(_BY_SESSION, {"session_key": checkout_session_id}).first()
        return None if row is None else _record(row)

    def for_end_user(self, end_user_id: str, *, limit: int) -> list[TopupRecord]:
        rows = self.connection.execute(
            select(stripe_topups)
            .where(stripe_topups.c.end_user_id == end_user_id)
            .order_by(stripe_topups.c.created_at.desc(), stripe_topups.c.id)
            .limit(limit)
        )
        return [_record(row) for row in rows]

    def move(
        self,
        topup_id: str,
        *,
        before: TopupStatus,
        after: TopupStatus,
        event_id: str,
        transaction_id: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": after.value, "last_event_id": event_id, "updated_at": self.now}
        if after is TopupStatus.CREDITED:
            values.update(credited_at=self.now, transaction_id=transaction_id)
        moved = self.connection.execute(_MOVE, {"topup_key": topup_id, "status_before": before.value, **values})
        if moved.rowcount != 1:
            raise LedgerInvariantViolation(f"top-up {topup_id} left {before} under a caller that held it")

    def created_since(self, since: datetime) -> list[TopupRecord]:
        rows = self.connection.execute(
            select(stripe_topups)
            .where(stripe_topups.c.created_at >= since)
            .order_by(stripe_topups.c.created_at, stripe_topups.c.id)
        )
        return [_record(row) for row in rows]

    def oldest_pending_created_at(self) -> datetime | None:
        oldest: datetime | None = self.connection.execute(
            select(func.min(stripe_topups.c.created_at)).where(stripe_topups.c.status == TopupStatus.PENDING.value)
        ).scalar_one()
        return oldest

    def by_payment_intent(self, payment_intent_id: str) -> TopupRecord | None:
        row = self.connection.execute(
            select(stripe_topups).where(stripe_topups.c.payment_intent_id == payment_intent_id)
        ).first()
        return None if row is None else _record(row)

    def record_payment_intent(self, topup_id: str, payment_intent_id: str) -> None:
        self.connection.execute(
            update(stripe_topups)
            .where((stripe_topups.c.id == topup_id) & stripe_topups.c.payment_intent_id.is_(None))
            .values(payment_intent_id=payment_intent_id, updated_at=self.now)
        )

    # -- refunds and disputes -------------------------------------------------------------

    def reversal(self, kind: ReversalKind, stripe_object_id: str, *, for_update: bool = False) -> ReversalRecord | None:
        stmt = select(stripe_reversals).where(
            (stripe_reversals.c.kind == kind.value) & (stripe_reversals.c.stripe_object_id == stripe_object_id)
        )
        if for_update:
            stmt = stmt.with_for_update()
        row = self.connection.execute(stmt).first()
        return None if row is None else _reversal(row)

    def add_reversal(self, reversal: ReversalRecord) -> bool:
        inserted = self.connection.execute(
            upsert_factory(self.connection)(stripe_reversals)
            .values(
                id=reversal.id,
                kind=reversal.kind.value,
                stripe_object_id=reversal.stripe_object_id,
                topup_id=reversal.topup_id,
                account_id=reversal.account_id,
                status=reversal.status.value,
                amount_cents=reversal.amount_cents,
                wallet_units=reversal.wallet_units,
                uncollected_units=reversal.uncollected_units,
                last_event_id=reversal.last_event_id,
                created_at=self.now,
                updated_at=self.now,
            )
            .on_conflict_do_nothing(index_elements=["kind", "stripe_object_id"])
            .returning(stripe_reversals.c.id)
        ).first()
        return inserted is not None

    def update_reversal(
        self,
        reversal_id: str,
        *,
        status: ReversalStatus,
        amount_cents: int,
        wallet_units: int,
        uncollected_units: int,
        event_id: str,
    ) -> None:
        moved = self.connection.execute(
            update(stripe_reversals)
            .where(stripe_reversals.c.id == reversal_id)
            .values(
                status=status.value,
                amount_cents=amount_cents,
                wallet_units=wallet_units,
                uncollected_units=uncollected_units,
                last_event_id=event_id,
                updated_at=self.now,
            )
        )
        if moved.rowcount != 1:
            raise LedgerInvariantViolation(f"reversal {reversal_id} vanished under a caller that held it")

    def add_reversal_posting(self, posting: ReversalPostingRecord) -> None:
        self.connection.execute(
            stripe_reversal_postings.insert().values(
                id=posting.id,
                reversal_id=posting.reversal_id,
                movement=posting.movement.value,
                wallet_units=posting.wallet_units,
                uncollected_units=posting.uncollected_units,
                amount_cents_after=posting.amount_cents_after,
                event_id=posting.event_id,
                transaction_id=posting.transaction_id,
                created_at=self.now,
            )
        )

    def reversals(self) -> list[ReversalRecord]:
        rows = self.connection.execute(select(stripe_reversals).order_by(stripe_reversals.c.id))
        return [_reversal(row) for row in rows]

    def reversal_postings(self) -> list[ReversalPostingRecord]:
        rows = self.connection.execute(select(stripe_reversal_postings).order_by(stripe_reversal_postings.c.id))
        return [_reversal_posting(row) for row in rows]
