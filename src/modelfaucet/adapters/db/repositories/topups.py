"""Stripe Checkout top-ups."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from ....domain.outcomes import LedgerInvariantViolation
from ....domain.topups import TopupStatus
from ....services.repositories import NewTopup, TopupRecord
from ..bulk import upsert_factory
from ..tables import stripe_topups


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
        stmt = select(stripe_topups).where(stripe_topups.c.checkout_session_id == checkout_session_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = self.connection.execute(stmt).first()
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
        moved = self.connection.execute(
            update(stripe_topups)
            .where((stripe_topups.c.id == topup_id) & (stripe_topups.c.status == before.value))
            .values(**values)
        )
        if moved.rowcount != 1:
            raise LedgerInvariantViolation(f"top-up {topup_id} left {before} under a caller that held it")
