"""Encrypted provider keys: the ciphertext leaves this module only through :meth:`sealed`."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from ....domain.ledger import OwnerScope
from ....services.repositories import ProviderKeyRecord, SealedSecret
from ..tables import provider_keys

# Everything but the ciphertext.
_PUBLIC_COLUMNS = [column for column in provider_keys.c if column.name != "ciphertext"]


def _record(row: Any) -> ProviderKeyRecord:
    return ProviderKeyRecord(
        id=row.id,
        owner_scope=OwnerScope(row.owner_scope),
        owner_id=row.owner_id,
        provider=row.provider,
        masked=row.masked,
        base_url=row.base_url,
        models_allowed=None if row.models_allowed is None else tuple(row.models_allowed),
        active=bool(row.active),
        created_at=row.created_at,
    )


class SqlProviderKeys:
    """Implements :class:`modelfaucet.services.repositories.ProviderKeyRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    def add(self, key: ProviderKeyRecord, sealed: SealedSecret) -> None:
        self.connection.execute(
            insert(provider_keys).values(
                id=key.id,
                owner_scope=str(key.owner_scope),
                owner_id=key.owner_id,
                provider=key.provider,
                key_id=sealed.key_id,
                ciphertext=sealed.ciphertext,
                masked=key.masked,
                base_url=key.base_url,
                models_allowed=None if key.models_allowed is None else list(key.models_allowed),
                active=key.active,
                created_at=self.now,
                updated_at=self.now,
            )
        )

    def get(self, key_row_id: str) -> ProviderKeyRecord | None:
        row = self.connection.execute(select(*_PUBLIC_COLUMNS).where(provider_keys.c.id == key_row_id)).first()
        return None if row is None else _record(row)

    def find(
        self, *, owner_scope: OwnerScope | None = None, owner_id: str | None = None, limit: int
    ) -> list[ProviderKeyRecord]:
        stmt = (
            select(*_PUBLIC_COLUMNS)
            .order_by(provider_keys.c.owner_scope, provider_keys.c.owner_id, provider_keys.c.created_at)
            .limit(limit)
        )
        if owner_scope is not None:
            stmt = stmt.where(provider_keys.c.owner_scope == str(owner_scope))
        if owner_id is not None:
            stmt = stmt.where(provider_keys.c.owner_id == owner_id)
        return [_record(row) for row in self.connection.execute(stmt)]

    def delete(self, key_row_id: str) -> None:
        self.connection.execute(delete(provider_keys).where(provider_keys.c.id == key_row_id))

    def sealed(self, key_row_id: str) -> SealedSecret | None:
        row = self.connection.execute(
            select(provider_keys.c.key_id, provider_keys.c.ciphertext).where(provider_keys.c.id == key_row_id)
        ).first()
        return None if row is None else SealedSecret(row.key_id, str(row.ciphertext))

    def count_not_sealed_with(self, key_id: str) -> int:
        counted = self.connection.execute(
            select(func.count()).select_from(provider_keys).where(provider_keys.c.key_id != key_id)
        ).scalar_one()
        return int(counted)

    def not_sealed_with(self, key_id: str, *, skip: Collection[str], limit: int) -> list[tuple[str, SealedSecret]]:
        stmt = select(provider_keys.c.id, provider_keys.c.key_id, provider_keys.c.ciphertext).where(
            provider_keys.c.key_id != key_id
        )
        if skip:
            stmt = stmt.where(provider_keys.c.id.not_in(list(skip)))
        rows = self.connection.execute(stmt.order_by(provider_keys.c.id).limit(limit))
        return [(str(row.id), SealedSecret(row.key_id, str(row.ciphertext))) for row in rows]

    def reseal(self, key_row_id: str, *, was: SealedSecret, sealed: SealedSecret) -> bool:
        changed = self.connection.execute(
            update(provider_keys)
            .where(and_(provider_keys.c.id == key_row_id, provider_keys.c.ciphertext == was.ciphertext))
            .values(ciphertext=sealed.ciphertext, key_id=sealed.key_id, updated_at=self.now)
        )
        return changed.rowcount == 1
