"""Adjustments, refunds and chargebacks an operator applied."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert

from ....services.repositories import AdjustmentRecord
from ..tables import adjustments


class SqlAdjustments:
    """Implements :class:`modelfaucet.services.repositories.AdjustmentRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    def add(self, adjustment: AdjustmentRecord) -> None:
        self.connection.execute(
            insert(adjustments).values(
                id=adjustment.id,
                account_id=adjustment.account_id,
                kind=adjustment.kind,
                direction=adjustment.direction,
                amount_units=adjustment.amount_units,
                status=adjustment.status,
                reason=adjustment.reason,
                idempotency_key=adjustment.idempotency_key,
                actor=adjustment.actor,
                transaction_id=adjustment.transaction_id,
                created_at=self.now,
            )
        )
