"""Received Stripe events, each stored with the answer a duplicate delivery receives."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from ....domain.stripe_sync import SyncOutcome
from ....domain.topups import StripeEventStatus, TopupStatus
from ....services.repositories import SyncRow, SyncRunRecord
from ..bulk import upsert_factory
from ..tables import stripe_events, stripe_sync_runs

# The first release stored the HTTP status it answered beside the body. Every stored answer
# is a 200 (a refused event stores nothing), so the column keeps saying so for readers of
# those rows; the answer itself is the JSON body, written exactly as that release wrote it.
ANSWERED_STATUS = 200


def _row_json(row: SyncRow) -> dict[str, Any]:
    return {
        "checkout_session_id": row.checkout_session_id,
        "topup_id": row.topup_id,
        "outcome": row.outcome.value,
        "stripe_status": row.stripe_status,
        "local_status": None if row.local_status is None else row.local_status.value,
        "amount_units": row.amount_units,
    }


def _row_of(stored: Mapping[str, Any]) -> SyncRow:
    local = stored.get("local_status")
    return SyncRow(
        checkout_session_id=stored["checkout_session_id"],
        topup_id=stored.get("topup_id"),
        outcome=SyncOutcome(stored["outcome"]),
        stripe_status=stored.get("stripe_status"),
        local_status=None if local is None else TopupStatus(local),
        amount_units=int(stored["amount_units"]),
    )


# Built once per dialect (statement construction and its cache key cost a webhook's CPU);
# the INSERT and SET take the columns the parameters name.
_ADD_RECEIVED: dict[str, Any] = {}
_RECORD_ANSWER = update(stripe_events).where(stripe_events.c.id == bindparam("event_key"))


def _add_received(connection: Connection) -> Any:
    dialect = connection.dialect.name
    stmt = _ADD_RECEIVED.get(dialect)
    if stmt is None:
        stmt = (
            upsert_factory(connection)(stripe_events)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(stripe_events.c.id)
        )
        _ADD_RECEIVED[dialect] = stmt
    return stmt


class SqlStripeEvents:
    """Implements :class:`modelfaucet.services.repositories.StripeEventRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    def add_received(self, *, event_id: str, event_type: str, payload: str) -> bool:
        inserted = self.connection.execute(
            _add_received(self.connection),
            {
                "id": event_id,
                "type": event_type,
                "payload": payload,
                "status": StripeEventStatus.PROCESSING.value,
                "received_at": self.now,
            },
        ).first()
        # rowcount is not reliable for INSERT … ON CONFLICT on every driver; RETURNING is.
        return inserted is not None

    def answer_of(self, event_id: str) -> Mapping[str, Any] | None:
        body = self.connection.execute(
            select(stripe_events.c.response_body).where(stripe_events.c.id == event_id)
        ).scalar_one()
        if not body:
            return None
        answer: dict[str, Any] = json.loads(body)
        return answer

    def record_answer(self, event_id: str, *, status: StripeEventStatus, answer: Mapping[str, Any]) -> None:
        self.connection.execute(
            _RECORD_ANSWER,
            {
                "event_key": event_id,
                "status": status.value,
                "response_status": ANSWERED_STATUS,
                "response_body": json.dumps(dict(answer)),
                "processed_at": self.now,
            },
        )

    def add_sync_run(self, run: SyncRunRecord) -> None:
        self.connection.execute(
            stripe_sync_runs.insert().values(
                id=run.id,
                actor=run.actor,
                since=run.since,
                summary=dict(run.summary),
                flagged=[_row_json(row) for row in run.flagged],
                created_at=self.now,
            )
        )

    def last_sync_run(self) -> SyncRunRecord | None:
        row = self.connection.execute(
            select(stripe_sync_runs).order_by(stripe_sync_runs.c.created_at.desc(), stripe_sync_runs.c.id).limit(1)
        ).first()
        if row is None:
            return None
        return SyncRunRecord(
            id=row.id,
            actor=row.actor,
            since=row.since,
            summary={str(k): int(v) for k, v in dict(row.summary).items()},
            flagged=tuple(_row_of(item) for item in row.flagged),
            created_at=row.created_at,
        )
