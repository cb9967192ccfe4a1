"""Idempotency keys: claims and the stored results of operations run under a key."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, select, update

from ....domain.idempotency import KeyState
from ....services.repositories import StoredKey
from ..bulk import upsert_factory
from ..tables import idempotency_keys

IN_FLIGHT = KeyState.IN_FLIGHT
DONE = KeyState.DONE


def _key_is(scope: str, key: str) -> Any:
    return and_(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)


class SqlIdempotencyKeys:
    """Implements :class:`modelfaucet.services.repositories.IdempotencyRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    def insert_claim(
        self, *, scope: str, key: str, request_hash: str, summary: Mapping[str, str], expires_at: datetime
    ) -> bool:
        inserted = self.connection.execute(
            upsert_factory(self.connection)(idempotency_keys)
            .values(
                scope=scope,
                key=key,
                request_hash=request_hash,
                request_summary=dict(summary),
                state=IN_FLIGHT,
                response_status=None,
                response_body=None,
                created_at=self.now,
                expires_at=expires_at,
            )
            .on_conflict_do_nothing(index_elements=["scope", "key"])
            .returning(idempotency_keys.c.key)
        ).first()
        # rowcount is not reliable for INSERT … ON CONFLICT on every driver; RETURNING is.
        return inserted is not None

    def get_for_update(self, scope: str, key: str) -> StoredKey | None:
        row = self.connection.execute(select(idempotency_keys).where(_key_is(scope, key)).with_for_update()).first()
        if row is None:
            return None
        return StoredKey(
            scope=row.scope,
            key=row.key,
            request_hash=row.request_hash,
            request_summary=row.request_summary,
            state=row.state,
            result=None if row.response_body is None else json.loads(row.response_body),
            created_at=row.created_at,
            expires_at=row.expires_at,
        )

    def take_over(
        self, found: StoredKey, *, request_hash: str, summary: Mapping[str, str], expires_at: datetime
    ) -> bool:
        taken = self.connection.execute(
            update(idempotency_keys)
            .where(
                and_(
                    _key_is(found.scope, found.key),
                    idempotency_keys.c.state == found.state,
                    idempotency_keys.c.created_at == found.created_at,
                )
            )
            .values(
                request_hash=request_hash,
                request_summary=dict(summary),
                state=IN_FLIGHT,
                response_status=None,
                response_body=None,
                created_at=self.now,
                expires_at=expires_at,
            )
        )
        return taken.rowcount == 1

    def complete(
        self, *, scope: str, key: str, claimed_at: datetime, result: Mapping[str, Any], expires_at: datetime
    ) -> bool:
        stored = self.connection.execute(
            update(idempotency_keys)
            .where(
                and_(
                    _key_is(scope, key),
                    idempotency_keys.c.state == IN_FLIGHT,
                    idempotency_keys.c.created_at == claimed_at,
                )
            )
            .values(
                state=DONE,
                response_body=json.dumps(result, ensure_ascii=False, allow_nan=False, separators=(",", ":")),
                expires_at=expires_at,
            )
        )
        return stored.rowcount == 1

    def release(self, *, scope: str, key: str, claimed_at: datetime) -> None:
        self.connection.execute(
            delete(idempotency_keys).where(
                and_(
                    _key_is(scope, key),
                    idempotency_keys.c.state == IN_FLIGHT,
                    idempotency_keys.c.created_at == claimed_at,
                )
            )
        )
