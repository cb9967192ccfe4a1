"""Developers, apps and their secret keys, features, model prices and end users.

End users are stored per app under a hash of the app's external user id, never in clear;
app secret keys only as the SHA-256 of the key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, or_, select, update

from ....domain.catalog import CatalogStatus
from ....domain.identity import external_user_hash, new_id
from ....services.repositories import (
    AppRecord,
    AppSecretKeyRecord,
    DeveloperRecord,
    FeatureRecord,
    ModelPriceRecord,
)
from ..bulk import upsert_factory
from ..tables import app_features, app_secret_keys, apps, developers, end_users, model_prices


def _developer(row: Any) -> DeveloperRecord:
    return DeveloperRecord(row.id, row.name, row.email, CatalogStatus(row.status), row.created_at)


def app_record(row: Any) -> AppRecord:
    return AppRecord(
        id=row.id,
        public_app_id=row.public_app_id,
        developer_id=row.developer_id,
        name=row.name,
        status=CatalogStatus(row.status),
        default_revenue_share_bps=int(row.default_revenue_share_bps),
        default_markup_bps=int(row.default_markup_bps),
        created_at=row.created_at,
    )


def feature_record(row: Any) -> FeatureRecord:
    return FeatureRecord(
        id=row.id,
        app_id=row.app_id,
        feature_key=row.feature_key,
        display_name=row.display_name,
        markup_bps=None if row.markup_bps is None else int(row.markup_bps),
        channel_share_bps=None if row.channel_share_bps is None else int(row.channel_share_bps),
        explicit_gateway_fee_units=int(row.explicit_gateway_fee_units),
        pricing_version=int(row.pricing_version),
        updated_at=row.updated_at,
    )


def _model_price(row: Any) -> ModelPriceRecord:
    return ModelPriceRecord(
        id=row.id,
        provider=row.provider,
        model=row.model,
        input_per_1m_units=int(row.input_per_1m_units),
        output_per_1m_units=int(row.output_per_1m_units),
        cached_per_1m_units=int(row.cached_per_1m_units),
        version=int(row.version),
        updated_at=row.updated_at,
    )


def _secret_key(row: Any) -> AppSecretKeyRecord:
    return AppSecretKeyRecord(row.id, row.app_id, row.name, row.created_at, row.last_used_at, row.revoked_at)


def _feature_is(app_id: str, feature_key: str) -> ColumnElement[bool]:
    return and_(app_features.c.app_id == app_id, app_features.c.feature_key == feature_key)


def _model_is(provider: str, model: str) -> ColumnElement[bool]:
    return and_(model_prices.c.provider == provider, model_prices.c.model == model)


class SqlCatalog:
    """Implements :class:`modelfaucet.services.repositories.CatalogRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    # -- the one get-or-create ----------------------------------------------------------

    def _insert_absent(self, table: Table, values: dict[str, Any], *, unique: list[str]) -> bool:
        """Insert ``values`` unless a row with the same ``unique`` columns exists; True if inserted.

        ``ON CONFLICT DO NOTHING``: a concurrent insert of the same key waits for the other
        transaction and then does nothing, so exactly one caller inserts."""
        inserted = self.connection.execute(
            upsert_factory(self.connection)(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=unique)
            .returning(table.c.id)
        ).first()
        # rowcount is not reliable for INSERT … ON CONFLICT on every driver; RETURNING is.
        return inserted is not None

    def _one(self, table: Table, where: ColumnElement[bool]) -> Any:
        return self.connection.execute(select(table).where(where)).one()

    # -- developers and apps ------------------------------------------------------------

    def get_developer(self, developer_id: str) -> DeveloperRecord | None:
        row = self.connection.execute(select(developers).where(developers.c.id == developer_id)).first()
        return None if row is None else _developer(row)

    def ensure_developer(self, proposed: DeveloperRecord) -> DeveloperRecord:
        values = {
            "id": proposed.id,
            "name": proposed.name,
            "email": proposed.email,
            "status": str(proposed.status),
            "created_at": self.now,
        }
        self._insert_absent(developers, values, unique=["email"])
        return _developer(self._one(developers, developers.c.email == proposed.email))

    def get_app(self, public_app_id: str) -> AppRecord | None:
        row = self.connection.execute(select(apps).where(apps.c.public_app_id == public_app_id)).first()
        return None if row is None else app_record(row)

    def ensure_app(self, proposed: AppRecord) -> AppRecord:
        values = {
            "id": proposed.id,
            "public_app_id": proposed.public_app_id,
            "developer_id": proposed.developer_id,
            "name": proposed.name,
            "status": str(proposed.status),
            "default_revenue_share_bps": proposed.default_revenue_share_bps,
            "default_markup_bps": proposed.default_markup_bps,
            "created_at": self.now,
        }
        self._insert_absent(apps, values, unique=["public_app_id"])
        return app_record(self._one(apps, apps.c.public_app_id == proposed.public_app_id))

    # -- features and model prices ------------------------------------------------------

    def ensure_feature(self, proposed: FeatureRecord) -> FeatureRecord:
        values = {
            "id": proposed.id,
            "app_id": proposed.app_id,
            "feature_key": proposed.feature_key,
            "display_name": proposed.display_name,
            "markup_bps": proposed.markup_bps,
            "channel_share_bps": proposed.channel_share_bps,
            "explicit_gateway_fee_units": proposed.explicit_gateway_fee_units,
            "pricing_version": proposed.pricing_version,
            "created_at": self.now,
            "updated_at": self.now,
        }
        self._insert_absent(app_features, values, unique=["app_id", "feature_key"])
        return feature_record(self._one(app_features, _feature_is(proposed.app_id, proposed.feature_key)))

    def put_feature(
        self,
        app_id: str,
        feature_key: str,
        *,
        display_name: str,
        markup_bps: int | None,
        channel_share_bps: int | None,
        explicit_gateway_fee_units: int,
    ) -> FeatureRecord:
        values = {
            "display_name": display_name,
            "markup_bps": markup_bps,
            "channel_share_bps": channel_share_bps,
            "explicit_gateway_fee_units": explicit_gateway_fee_units,
            "updated_at": self.now,
        }
        first = {
            "id": new_id(),
            "app_id": app_id,
            "feature_key": feature_key,
            "pricing_version": 1,
            "created_at": self.now,
        }
        where = _feature_is(app_id, feature_key)
        if not self._insert_absent(app_features, {**first, **values}, unique=["app_id", "feature_key"]):
            # An existing feature: the new pricing bumps the version in one statement.
            self.connection.execute(
                update(app_features).where(where).values(pricing_version=app_features.c.pricing_version + 1, **values)
            )
        return feature_record(self._one(app_features, where))

    def has_feature(self, app_id: str, feature_key: str) -> bool:
        where = _feature_is(app_id, feature_key)
        return self.connection.execute(select(app_features.c.id).where(where)).first() is not None

    def ensure_model_price(self, proposed: ModelPriceRecord) -> ModelPriceRecord:
        values = {
            "id": proposed.id,
            "provider": proposed.provider,
            "model": proposed.model,
            "input_per_1m_units": proposed.input_per_1m_units,
            "output_per_1m_units": proposed.output_per_1m_units,
            "cached_per_1m_units": proposed.cached_per_1m_units,
            "version": proposed.version,
            "created_at": self.now,
            "updated_at": self.now,
        }
        self._insert_absent(model_prices, values, unique=["provider", "model"])
        return _model_price(self._one(model_prices, _model_is(proposed.provider, proposed.model)))

    def put_model_price(
        self,
        provider: str,
        model: str,
        *,
        input_per_1m_units: int,
        output_per_1m_units: int,
        cached_per_1m_units: int,
    ) -> ModelPriceRecord:
        values = {
            "input_per_1m_units": input_per_1m_units,
            "output_per_1m_units": output_per_1m_units,
            "cached_per_1m_units": cached_per_1m_units,
            "updated_at": self.now,
        }
        first = {"id": new_id(), "provider": provider, "model": model, "version": 1, "created_at": self.now}
        where = _model_is(provider, model)
        if not self._insert_absent(model_prices, {**first, **values}, unique=["provider", "model"]):
            self.connection.execute(
                update(model_prices).where(where).values(version=model_prices.c.version + 1, **values)
            )
        return _model_price(self._one(model_prices, where))

    # -- end users ----------------------------------------------------------------------

    def add_end_user(self, app_id: str, external_user_id: str) -> str | None:
        end_user_id = new_id()
        values = {
            "id": end_user_id,
            "app_id": app_id,
            "external_user_hash": external_user_hash(app_id, external_user_id),
            "created_at": self.now,
        }
        return end_user_id if self._insert_absent(end_users, values, unique=["app_id", "external_user_hash"]) else None

    def ensure_end_user(self, app_id: str, external_user_id: str) -> str:
        user_hash = external_user_hash(app_id, external_user_id)
        find = select(end_users.c.id).where(
            and_(end_users.c.app_id == app_id, end_users.c.external_user_hash == user_hash)
        )
        found = self.connection.execute(find).scalar_one_or_none()
        if found is not None:  # the common case: one read, no write
            return str(found)
        created = self.add_end_user(app_id, external_user_id)
        # None: a concurrent transaction created the user first; it is visible now.
        return created if created is not None else str(self.connection.execute(find).scalar_one())

    # -- app secret keys ----------------------------------------------------------------

    def add_secret_key(self, key: AppSecretKeyRecord, *, key_hash: str) -> bool:
        values = {
            "id": key.id,
            "app_id": key.app_id,
            "name": key.name,
            "key_hash": key_hash,
            "created_at": self.now,
            "last_used_at": None,
            "revoked_at": None,
        }
        return self._insert_absent(app_secret_keys, values, unique=["key_hash"])

    def secret_keys(self, app_id: str) -> list[AppSecretKeyRecord]:
        rows = self.connection.execute(
            select(app_secret_keys)
            .where(app_secret_keys.c.app_id == app_id)
            .order_by(app_secret_keys.c.created_at, app_secret_keys.c.id)
        )
        return [_secret_key(row) for row in rows]

    def get_secret_key(self, app_id: str, key_id: str) -> AppSecretKeyRecord | None:
        row = self.connection.execute(
            select(app_secret_keys).where(and_(app_secret_keys.c.app_id == app_id, app_secret_keys.c.id == key_id))
        ).first()
        return None if row is None else _secret_key(row)

    def live_secret_key(self, key_hash: str) -> AppSecretKeyRecord | None:
        row = self.connection.execute(
            select(app_secret_keys).where(
                and_(app_secret_keys.c.key_hash == key_hash, app_secret_keys.c.revoked_at.is_(None))
            )
        ).first()
        return None if row is None else _secret_key(row)

    def revoke_secret_key(self, key_id: str) -> bool:
        revoked = self.connection.execute(
            update(app_secret_keys)
            .where(and_(app_secret_keys.c.id == key_id, app_secret_keys.c.revoked_at.is_(None)))
            .values(revoked_at=self.now)
        )
        return revoked.rowcount == 1

    def mark_secret_key_used(self, key_id: str, *, unless_used_since: datetime) -> None:
        last_used = app_secret_keys.c.last_used_at
        self.connection.execute(
            update(app_secret_keys)
            .where(and_(app_secret_keys.c.id == key_id, or_(last_used.is_(None), last_used < unless_used_since)))
            .values(last_used_at=self.now)
        )
