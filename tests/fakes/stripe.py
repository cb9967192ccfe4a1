"""In-memory top-ups, Stripe events and a recording Checkout provider, for the money-rule tests.

:class:`StripeState` is one field of :class:`tests.fakes.memory.MemoryState`, so it is copied
with the rest of the books by each unit of work and thrown away on rollback. The fakes
keep the SQL repositories' rules: one top-up per Checkout session, one event per id, a
status move only from the status the caller saw, answers stored as JSON text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from modelfaucet.adapters.stripe.checkout import CheckoutRequest, CheckoutSession
from modelfaucet.domain.outcomes import LedgerInvariantViolation
from modelfaucet.domain.topups import StripeEventStatus, TopupStatus
from modelfaucet.services.repositories import NewTopup, TopupRecord


@dataclass
class StoredEvent:
    type: str
    payload: str
    status: StripeEventStatus
    answer: str | None = None


@dataclass
class StripeState:
    topups: dict[str, TopupRecord] = field(default_factory=dict)
    events: dict[str, StoredEvent] = field(default_factory=dict)

    def topup_for(self, checkout_session_id: str) -> TopupRecord:
        return next(t for t in self.topups.values() if t.checkout_session_id == checkout_session_id)


class MemoryTopups:
    """Implements :class:`modelfaucet.services.repositories.TopupRepository` in memory."""

    def __init__(self, state: StripeState, now: datetime) -> None:
        self.state = state
        self.now = now

    def add_pending(self, topup: NewTopup) -> bool:
        if self.by_session(topup.checkout_session_id) is not None:
            return False
        self.state.topups[topup.id] = TopupRecord(
            id=topup.id,
            checkout_session_id=topup.checkout_session_id,
            account_id=topup.account_id,
            end_user_id=topup.end_user_id,
            amount_units=topup.amount_units,
            amount_cents=topup.amount_cents,
            currency=topup.currency,
            status=TopupStatus.PENDING,
            checkout_url=topup.checkout_url,
            created_at=self.now,
        )
        return True

    def by_session(self, checkout_session_id: str, *, for_update: bool = False) -> TopupRecord | None:
        return next((t for t in self.state.topups.values() if t.checkout_session_id == checkout_session_id), None)

    def for_end_user(self, end_user_id: str, *, limit: int) -> list[TopupRecord]:
        mine = [t for t in self.state.topups.values() if t.end_user_id == end_user_id]
        mine.sort(key=lambda t: t.id)
        mine.sort(key=lambda t: t.created_at, reverse=True)
        return mine[:limit]

    def move(
        self,
        topup_id: str,
        *,
        before: TopupStatus,
        after: TopupStatus,
        event_id: str,
        transaction_id: str | None = None,
    ) -> None:
        found = self.state.topups[topup_id]
        if found.status is not before:
            raise LedgerInvariantViolation(f"top-up {topup_id} left {before} under a caller that held it")
        moved = replace(found, status=after, last_event_id=event_id)
        if after is TopupStatus.CREDITED:
            moved = replace(moved, credited_at=self.now, transaction_id=transaction_id)
        self.state.topups[topup_id] = moved


class MemoryStripeEvents:
    """Implements :class:`modelfaucet.services.repositories.StripeEventRepository` in memory."""

    def __init__(self, state: StripeState, now: datetime) -> None:
        self.state = state
        self.now = now

    def add_received(self, *, event_id: str, event_type: str, payload: str) -> bool:
        if event_id in self.state.events:
            return False
        self.state.events[event_id] = StoredEvent(event_type, payload, StripeEventStatus.PROCESSING)
        return True

    def answer_of(self, event_id: str) -> Mapping[str, Any] | None:
        answer = self.state.events[event_id].answer
        return None if answer is None else json.loads(answer)  # type: ignore[no-any-return]

    def record_answer(self, event_id: str, *, status: StripeEventStatus, answer: Mapping[str, Any]) -> None:
        stored = self.state.events[event_id]
        stored.status, stored.answer = status, json.dumps(dict(answer))


def stripe_repositories(state: StripeState, now: datetime) -> tuple[MemoryTopups, MemoryStripeEvents]:
    return MemoryTopups(state, now), MemoryStripeEvents(state, now)


@dataclass
class RecordingCheckoutProvider:
    """A Checkout provider that records what it was asked; one session per idempotency key."""

    name: str = "fake"
    requests: list[CheckoutRequest] = field(default_factory=list)

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        self.requests.append(request)
        session_id = "cs_test_" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]
        return CheckoutSession(id=session_id, url=f"https://checkout.stripe.test/{session_id}")
