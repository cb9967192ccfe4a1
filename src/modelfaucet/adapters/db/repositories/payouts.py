"""Payouts: the only code that knows the ``payouts`` table.

Open payouts are the statuses of :data:`modelfaucet.domain.payouts.OPEN_STATUSES`; the
partial unique index ``uq_payouts_open_per_developer`` backs the same rule in the schema,
so :meth:`SqlPayouts.add` of a second open payout for a developer inserts nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from ....domain.catalog import CatalogStatus
from ....domain.ledger import OwnerScope
from ....domain.outcomes import NotFound
from ....domain.payouts import OPEN_STATUSES, PAYOUT_NOT_FOUND, PayoutStatus
from ....domain.timestamps import as_utc
from ....services.repositories import PayoutCandidate, PayoutRecord
from ..bulk import upsert_factory
from ..tables import accounts, developers, ledger_postings, payouts

# The open statuses as the SQL compares them (tables.py's partial index spells the same set).
OPEN = sorted(str(status) for status in OPEN_STATUSES)
# The developers.status of a developer who can be paid.


def payout_record(row: Any) -> PayoutRecord:
    return PayoutRecord(
        id=row.id,
        developer_id=row.developer_id,
        account_id=row.account_id,
        amount_units=int(row.amount_units),
        status=PayoutStatus(row.status),
        provider=row.provider,
        provider_payout_id=row.provider_payout_id,
        created_by=row.created_by,
        approved_by=row.approved_by,
        operator_note=row.operator_note,
        transaction_id=row.transaction_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlPayouts:
    """Implements :class:`modelfaucet.services.repositories.PayoutRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    def candidates(self) -> list[PayoutCandidate]:
        wallet_of_developer = and_(
            accounts.c.owner_scope == str(OwnerScope.DEVELOPER),
            accounts.c.owner_id == developers.c.id,
        )
        rows = self.connection.execute(
            select(developers.c.id, accounts.c.id.label("account_id"))
            .select_from(developers.join(accounts, wallet_of_developer))
            .where(developers.c.status == CatalogStatus.ACTIVE.value)
            .where(accounts.c.balance_units - accounts.c.reserved_units > 0)
            .order_by(accounts.c.id)
        )
        return [PayoutCandidate(developer_id=row.id, account_id=row.account_id) for row in rows]

    def has_open(self, developer_id: str) -> bool:
        found = self.connection.execute(
            select(payouts.c.id).where(payouts.c.developer_id == developer_id, payouts.c.status.in_(OPEN)).limit(1)
        ).first()
        return found is not None

    def credited_since(self, account_id: str, *, since: datetime) -> int:
        total = self.connection.execute(
            select(func.coalesce(func.sum(ledger_postings.c.amount_units), 0)).where(
                ledger_postings.c.account_id == account_id,
                ledger_postings.c.amount_units > 0,
                ledger_postings.c.created_at > since,
            )
        ).scalar_one()
        return int(total)

    def add(self, payout: PayoutRecord) -> bool:
        stmt = upsert_factory(self.connection)(payouts).values(
            id=payout.id,
            developer_id=payout.developer_id,
            account_id=payout.account_id,
            amount_units=payout.amount_units,
            status=str(payout.status),
            provider=payout.provider,
            provider_payout_id=payout.provider_payout_id,
            created_by=payout.created_by,
            approved_by=payout.approved_by,
            operator_note=payout.operator_note,
            transaction_id=payout.transaction_id,
            created_at=payout.created_at,
            updated_at=payout.updated_at,
        )
        inserted = self.connection.execute(stmt.on_conflict_do_nothing().returning(payouts.c.id)).first()
        return inserted is not None

    def get(self, payout_id: str, *, for_update: bool = False) -> PayoutRecord | None:
        stmt = select(payouts).where(payouts.c.id == payout_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = self.connection.execute(stmt).first()
        return None if row is None else payout_record(row)

    def require(self, payout_id: str, *, for_update: bool = False) -> PayoutRecord:
        found = self.get(payout_id, for_update=for_update)
        if found is None:
            raise NotFound(PAYOUT_NOT_FOUND, details={"payout_id": payout_id})
        return found

    def update(self, payout: PayoutRecord, *, status_before: PayoutStatus) -> bool:
        # What a review may change; who the payout is for, its amount and creation never do.
        reviewed = {
            "status": str(payout.status),
            "provider_payout_id": payout.provider_payout_id,
            "approved_by": payout.approved_by,
            "operator_note": payout.operator_note,
            "transaction_id": payout.transaction_id,
            "updated_at": payout.updated_at,
        }
        changed = self.connection.execute(
            update(payouts).where(payouts.c.id == payout.id, payouts.c.status == str(status_before)).values(reviewed)
        )
        return changed.rowcount == 1

    def latest(self, *, status: PayoutStatus | None, limit: int) -> list[PayoutRecord]:
        stmt = select(payouts).order_by(payouts.c.created_at.desc(), payouts.c.id).limit(limit)
        if status is not None:
            stmt = stmt.where(payouts.c.status == str(status))
        return [payout_record(row) for row in self.connection.execute(stmt)]

    def count_by_status(self) -> dict[PayoutStatus, int]:
        stmt = select(payouts.c.status, func.count()).group_by(payouts.c.status)
        return {PayoutStatus(status): count for status, count in self.connection.execute(stmt)}

    def oldest_open_created_at(self) -> datetime | None:
        found = self.connection.execute(select(func.min(payouts.c.created_at)).where(payouts.c.status.in_(OPEN)))
        oldest: datetime | None = found.scalar_one()
        return None if oldest is None else as_utc(oldest)
