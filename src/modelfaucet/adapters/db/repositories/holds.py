"""Hold rows (SPEC §18): placed, then captured, released or expired exactly once."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from ....domain.holds import HoldStatus
from ....domain.timestamps import as_utc
from ....services.repositories import HoldRecord
from ....services.unit_of_work import ConcurrentWrite
from ..bulk import among, driver_rowcount, insert_many, text_array
from ..errors import unique_violation
from ..tables import holds

_HELD = HoldStatus.HELD.value
_COLUMNS = (
    "id",
    "request_id",
    "request_hash",
    "account_id",
    "app_id",
    "end_user_id",
    "amount_units",
    "status",
    "capture_request_id",
    "created_at",
    "expires_at",
    "ended_at",
)
_IN_CHUNK = 500


def _record(row: Any) -> HoldRecord:
    return HoldRecord(
        id=row.id,
        request_id=row.request_id,
        request_hash=row.request_hash,
        account_id=row.account_id,
        app_id=row.app_id,
        end_user_id=row.end_user_id,
        amount_units=int(row.amount_units),
        status=HoldStatus(row.status),
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
        ended_at=None if row.ended_at is None else as_utc(row.ended_at),
        capture_request_id=row.capture_request_id,
    )


# Built once (every top-up credit asks): the accounts and the time are bound per call.
_DUE_ON = (
    select(holds)
    .where(
        holds.c.account_id.in_(bindparam("due_accounts", expanding=True)),
        holds.c.status == _HELD,
        holds.c.expires_at <= bindparam("due_by", type_=holds.c.expires_at.type),
    )
    .order_by(holds.c.created_at, holds.c.id)
)


# A usage batch's captures in one statement on PostgreSQL (the bare driver, as the batch's
# other set statements); per hold elsewhere.
_CAPTURE_MANY_PG = (
    f"UPDATE holds AS h SET status = '{HoldStatus.CAPTURED.value}', ended_at = %(now)s, "
    "capture_request_id = c.request_id "
    "FROM unnest(CAST(%(ids)s AS VARCHAR[]), CAST(%(requests)s AS VARCHAR[])) AS c(id, request_id) "
    f"WHERE h.id = c.id AND h.status = '{_HELD}'"
)
_CAPTURE_ONE = (
    update(holds)
    .where(and_(holds.c.id == bindparam("hold_id"), holds.c.status == _HELD))
    .values(
        status=HoldStatus.CAPTURED.value,
        ended_at=bindparam("ended", type_=holds.c.ended_at.type),
        capture_request_id=bindparam("capturing"),
    )
)


class SqlHolds:
    """Implements :class:`modelfaucet.services.repositories.HoldRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    def _where(self, *conditions: Any) -> list[HoldRecord]:
        stmt = select(holds).where(*conditions).order_by(holds.c.created_at, holds.c.id)
        return [_record(row) for row in self.connection.execute(stmt)]

    def by_request_ids(self, request_ids: Collection[str]) -> dict[str, HoldRecord]:
        found: dict[str, HoldRecord] = {}
        keys = sorted(set(request_ids))
        for start in range(0, len(keys), _IN_CHUNK):
            for hold in self._where(among(self.connection, holds.c.request_id, keys[start : start + _IN_CHUNK])):
                found[hold.request_id] = hold
        return found

    def by_ids(self, hold_ids: Collection[str]) -> dict[str, HoldRecord]:
        found: dict[str, HoldRecord] = {}
        keys = sorted(set(hold_ids))
        for start in range(0, len(keys), _IN_CHUNK):
            for hold in self._where(among(self.connection, holds.c.id, keys[start : start + _IN_CHUNK])):
                found[hold.id] = hold
        return found

    def add_many(self, new: Sequence[HoldRecord]) -> None:
        rows = [
            (
                hold.id,
                hold.request_id,
                hold.request_hash,
                hold.account_id,
                hold.app_id,
                hold.end_user_id,
                hold.amount_units,
                hold.status.value,
                hold.capture_request_id,
                hold.created_at,
                hold.expires_at,
                hold.ended_at,
            )
            for hold in new
        ]
        try:
            insert_many(self.connection, holds, _COLUMNS, rows)  # COPY on PostgreSQL
        except IntegrityError as exc:
            if unique_violation(exc):
                raise ConcurrentWrite() from exc
            raise

    def capture_many(self, captures: Mapping[str, str]) -> int:
        if not captures:
            return 0
        keys = sorted(captures)
        if self.connection.dialect.name == "postgresql":
            params = {
                "ids": text_array(keys),
                "requests": text_array(captures[key] for key in keys),
                "now": self.now,
            }
            return driver_rowcount(self.connection, _CAPTURE_MANY_PG, params)
        execute = self.connection.execute
        return sum(
            execute(_CAPTURE_ONE, {"hold_id": key, "capturing": captures[key], "ended": self.now}).rowcount
            for key in keys
        )

    def end_many(self, hold_ids: Collection[str], status: HoldStatus) -> int:
        keys = sorted(set(hold_ids))
        ended = 0
        for start in range(0, len(keys), _IN_CHUNK):
            stmt = (
                update(holds)
                .where(and_(holds.c.id.in_(keys[start : start + _IN_CHUNK]), holds.c.status == _HELD))
                .values(status=status.value, ended_at=self.now)
            )
            ended += self.connection.execute(stmt).rowcount
        return ended

    def due(self, *, limit: int) -> list[HoldRecord]:
        stmt = (
            select(holds)
            .where(and_(holds.c.status == _HELD, holds.c.expires_at <= self.now))
            .order_by(holds.c.expires_at, holds.c.id)
            .limit(limit)
        )
        return [_record(row) for row in self.connection.execute(stmt)]

    def due_on(self, account_ids: Collection[str]) -> list[HoldRecord]:
        if not account_ids:
            return []
        rows = self.connection.execute(_DUE_ON, {"due_accounts": sorted(set(account_ids)), "due_by": self.now})
        return [_record(row) for row in rows]

    def open_on(self, account_id: str) -> list[HoldRecord]:
        return self._where(holds.c.account_id == account_id, holds.c.status == _HELD)

    def count_held(self) -> int:
        # A range of ix_holds_open_by_expiry: only the held holds are read.
        stmt = select(func.count()).select_from(holds).where(holds.c.status == _HELD)
        return int(self.connection.execute(stmt).scalar_one())
