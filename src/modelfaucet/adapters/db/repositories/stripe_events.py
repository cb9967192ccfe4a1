"""Received Stripe events, each stored with the answer a duplicate delivery receives."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from ....domain.topups import StripeEventStatus
from ..bulk import upsert_factory
from ..tables import stripe_events

# The first release stored the HTTP status it answered beside the body. Every stored answer
# is a 200 (a refused event stores nothing), so the column keeps saying so for readers of
# those rows; the answer itself is the JSON body, written exactly as that release wrote it.
ANSWERED_STATUS = 200


class SqlStripeEvents:
    """Implements :class:`modelfaucet.services.repositories.StripeEventRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    def add_received(self, *, event_id: str, event_type: str, payload: str) -> bool:
        inserted = self.connection.execute(
            upsert_factory(self.connection)(stripe_events)
            .values(
                id=event_id,
                type=event_type,
                payload=payload,
                status=StripeEventStatus.PROCESSING.value,
                received_at=self.now,
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(stripe_events.c.id)
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
            update(stripe_events)
            .where(stripe_events.c.id == event_id)
            .values(
                status=status.value,
                response_status=ANSWERED_STATUS,
                response_body=json.dumps(dict(answer)),
                processed_at=self.now,
            )
        )
