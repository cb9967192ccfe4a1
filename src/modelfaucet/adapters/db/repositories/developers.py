"""Developer access: developer tokens, and the reads a developer token opens (SPEC §17).

Tokens are stored only as the SHA-256 of the token. Every read takes the developer's id
and filters by it in the query, so a row of another developer is never loaded: it is
answered exactly like a missing one.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, literal, or_, select, update

from ....domain.catalog import CatalogStatus
from ....domain.earnings import EarningsGrouping, EarningsLine
from ....domain.payouts import OPEN_STATUSES, PayoutStatus
from ....services.repositories import (
    AppRecord,
    DeveloperPayout,
    DeveloperTokenRecord,
    FeatureRecord,
    PayoutStatusChange,
)
from ..bulk import upsert_factory
from ..tables import app_features, apps, audit_log, developer_tokens, developers, payouts, usage_events
from .catalog import app_record, feature_record

# The audit trail's name for payouts: their history is read from it.
PAYOUT_RESOURCE_TYPE = "payout"


def _token(row: Any) -> DeveloperTokenRecord:
    return DeveloperTokenRecord(row.id, row.developer_id, row.name, row.created_at, row.last_used_at, row.revoked_at)


def _payout(row: Any) -> DeveloperPayout:
    return DeveloperPayout(
        id=row.id,
        developer_id=row.developer_id,
        amount_units=int(row.amount_units),
        status=PayoutStatus(row.status),
        provider=row.provider,
        provider_payout_id=row.provider_payout_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlDeveloperAccess:
    """Implements :class:`modelfaucet.services.repositories.DeveloperAccessRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    # -- tokens -------------------------------------------------------------------------

    def add_token(self, token: DeveloperTokenRecord, *, token_hash: str) -> bool:
        inserted = self.connection.execute(
            upsert_factory(self.connection)(developer_tokens)
            .values(
                id=token.id,
                developer_id=token.developer_id,
                name=token.name,
                token_hash=token_hash,
                created_at=self.now,
                last_used_at=None,
                revoked_at=None,
            )
            .on_conflict_do_nothing(index_elements=["token_hash"])
            .returning(developer_tokens.c.id)
        ).first()
        return inserted is not None

    def tokens(self, developer_id: str) -> list[DeveloperTokenRecord]:
        rows = self.connection.execute(
            select(developer_tokens)
            .where(developer_tokens.c.developer_id == developer_id)
            .order_by(developer_tokens.c.created_at, developer_tokens.c.id)
        )
        return [_token(row) for row in rows]

    def get_token(self, developer_id: str, token_id: str) -> DeveloperTokenRecord | None:
        row = self.connection.execute(
            select(developer_tokens).where(
                and_(developer_tokens.c.developer_id == developer_id, developer_tokens.c.id == token_id)
            )
        ).first()
        return None if row is None else _token(row)

    def live_token(self, token_hash: str) -> DeveloperTokenRecord | None:
        row = self.connection.execute(
            select(developer_tokens)
            .join(developers, developers.c.id == developer_tokens.c.developer_id)
            .where(
                and_(
                    developer_tokens.c.token_hash == token_hash,
                    developer_tokens.c.revoked_at.is_(None),
                    developers.c.status == CatalogStatus.ACTIVE.value,
                )
            )
        ).first()
        return None if row is None else _token(row)

    def revoke_token(self, token_id: str) -> bool:
        revoked = self.connection.execute(
            update(developer_tokens)
            .where(and_(developer_tokens.c.id == token_id, developer_tokens.c.revoked_at.is_(None)))
            .values(revoked_at=self.now)
        )
        return revoked.rowcount == 1

    def mark_token_used(self, token_id: str, *, unless_used_since: datetime) -> None:
        last_used = developer_tokens.c.last_used_at
        self.connection.execute(
            update(developer_tokens)
            .where(and_(developer_tokens.c.id == token_id, or_(last_used.is_(None), last_used < unless_used_since)))
            .values(last_used_at=self.now)
        )

    # -- the developer's catalog ----------------------------------------------------------

    def apps(self, developer_id: str) -> list[AppRecord]:
        rows = self.connection.execute(
            select(apps).where(apps.c.developer_id == developer_id).order_by(apps.c.public_app_id)
        )
        return [app_record(row) for row in rows]

    def features(self, app_ids: Collection[str]) -> list[FeatureRecord]:
        if not app_ids:
            return []
        rows = self.connection.execute(
            select(app_features)
            .where(app_features.c.app_id.in_(list(app_ids)))
            .order_by(app_features.c.app_id, app_features.c.feature_key)
        )
        return [feature_record(row) for row in rows]

    # -- payouts --------------------------------------------------------------------------

    def payouts(self, developer_id: str, *, status: PayoutStatus | None, limit: int) -> list[DeveloperPayout]:
        stmt = (
            select(payouts)
            .where(payouts.c.developer_id == developer_id)
            .order_by(payouts.c.created_at.desc(), payouts.c.id)
            .limit(limit)
        )
        if status is not None:
            stmt = stmt.where(payouts.c.status == str(status))
        return [_payout(row) for row in self.connection.execute(stmt)]

    def payout(self, developer_id: str, payout_id: str) -> DeveloperPayout | None:
        row = self.connection.execute(
            select(payouts).where(and_(payouts.c.id == payout_id, payouts.c.developer_id == developer_id))
        ).first()
        return None if row is None else _payout(row)

    def payout_history(self, payout_id: str) -> list[PayoutStatusChange]:
        rows = self.connection.execute(
            select(audit_log.c.created_at, audit_log.c.before_status, audit_log.c.after_status)
            .where(
                and_(
                    audit_log.c.resource_type == PAYOUT_RESOURCE_TYPE,
                    audit_log.c.resource_id == payout_id,
                    audit_log.c.after_status.is_not(None),
                )
            )
            .order_by(audit_log.c.id)
        )
        return [
            PayoutStatusChange(
                at=row.created_at,
                before_status=None if row.before_status is None else PayoutStatus(row.before_status),
                after_status=PayoutStatus(row.after_status),
            )
            for row in rows
        ]

    def open_payout_units(self, developer_id: str) -> int:
        total = self.connection.execute(
            select(func.coalesce(func.sum(payouts.c.amount_units), 0)).where(
                and_(
                    payouts.c.developer_id == developer_id,
                    payouts.c.status.in_(sorted(str(status) for status in OPEN_STATUSES)),
                )
            )
        ).scalar_one()
        return int(total)

    # -- earnings -------------------------------------------------------------------------

    def earnings(
        self, app_ids: Collection[str], *, start: datetime, end: datetime, grouping: EarningsGrouping
    ) -> list[EarningsLine]:
        if not app_ids:
            return []
        key = self._group_key(grouping)
        u = usage_events.c
        # A range of ix_usage_events_app_created per app: other apps' events are never read.
        rows = self.connection.execute(
            select(
                key.label("key"),
                func.count().label("requests"),
                func.sum(u.input_tokens).label("input_tokens"),
                func.sum(u.output_tokens).label("output_tokens"),
                func.sum(u.retail_price_units).label("retail"),
                func.sum(u.channel_revenue_units).label("channel"),
            )
            .where(and_(u.app_id.in_(list(app_ids)), u.created_at >= start, u.created_at < end))
            .group_by(key)
            .order_by(key)
        )
        return [
            EarningsLine(
                key=str(row.key),
                requests=int(row.requests),
                input_tokens=int(row.input_tokens),
                output_tokens=int(row.output_tokens),
                retail_units=int(row.retail),
                channel_revenue_units=int(row.channel),
            )
            for row in rows
        ]

    def _group_key(self, grouping: EarningsGrouping) -> ColumnElement[Any]:
        u = usage_events.c
        if grouping is EarningsGrouping.APP:
            return u.public_app_id
        if grouping is EarningsGrouping.FEATURE:
            return u.feature_key
        if grouping is EarningsGrouping.MODEL:
            return u.provider + literal("/") + u.model
        # The UTC day. SQLite keeps UTC times as text 'YYYY-MM-DD HH:MM:SS…'.
        if self.connection.dialect.name == "postgresql":
            return func.to_char(func.timezone("UTC", u.created_at), "YYYY-MM-DD")
        return func.substr(u.created_at, 1, 10)
