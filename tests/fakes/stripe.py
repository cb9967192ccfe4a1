"""In-memory top-ups, Stripe events and a recording Checkout provider, for the money-rule tests.

:class:`StripeState` is one field of :class:`tests.fakes.memory.MemoryState`, so it is copied
with the rest of the books by each unit of work and thrown away on rollback. The fakes
keep the SQL repositories' rules: one top-up per Checkout session, one event per id, a
status move only from the status the caller saw, answers stored as JSON text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from modelfaucet.adapters.stripe.checkout import CheckoutRequest, CheckoutSession
from modelfaucet.adapters.stripe.sessions import StripeSession
from modelfaucet.domain.outcomes import LedgerInvariantViolation
from modelfaucet.domain.reversals import ReversalKind, ReversalStatus
from modelfaucet.domain.topups import StripeEventStatus, TopupStatus
from modelfaucet.services.repositories import (
    NewTopup,
    ReversalPostingRecord,
    ReversalRecord,
    SyncRunRecord,
    TopupRecord,
)


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
    reversals: dict[str, ReversalRecord] = field(default_factory=dict)
    reversal_postings: dict[str, ReversalPostingRecord] = field(default_factory=dict)
    sync_runs: list[SyncRunRecord] = field(default_factory=list)

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

    def created_since(self, since: datetime) -> list[TopupRecord]:
        return sorted(
            (t for t in self.state.topups.values() if t.created_at >= since), key=lambda t: (t.created_at, t.id)
        )

    def oldest_pending_created_at(self) -> datetime | None:
        pending = [t.created_at for t in self.state.topups.values() if t.status is TopupStatus.PENDING]
        return min(pending, default=None)

    def by_payment_intent(self, payment_intent_id: str) -> TopupRecord | None:
        return next((t for t in self.state.topups.values() if t.payment_intent_id == payment_intent_id), None)

    def record_payment_intent(self, topup_id: str, payment_intent_id: str) -> None:
        found = self.state.topups[topup_id]
        if found.payment_intent_id is None:
            if self.by_payment_intent(payment_intent_id) is not None:
                raise LedgerInvariantViolation("a PaymentIntent paid two top-ups")  # the unique index
            self.state.topups[topup_id] = replace(found, payment_intent_id=payment_intent_id)

    def reversal(self, kind: ReversalKind, stripe_object_id: str, *, for_update: bool = False) -> ReversalRecord | None:
        return next(
            (r for r in self.state.reversals.values() if (r.kind, r.stripe_object_id) == (kind, stripe_object_id)),
            None,
        )

    def add_reversal(self, reversal: ReversalRecord) -> bool:
        if self.reversal(reversal.kind, reversal.stripe_object_id) is not None:
            return False
        self.state.reversals[reversal.id] = reversal
        return True

    def update_reversal(
        self,
        reversal_id: str,
        *,
        status: ReversalStatus,
        amount_cents: int,
        wallet_units: int,
        uncollected_units: int,
        event_id: str,
    ) -> None:
        self.state.reversals[reversal_id] = replace(
            self.state.reversals[reversal_id],
            status=status,
            amount_cents=amount_cents,
            wallet_units=wallet_units,
            uncollected_units=uncollected_units,
            last_event_id=event_id,
        )

    def add_reversal_posting(self, posting: ReversalPostingRecord) -> None:
        once = (posting.reversal_id, posting.movement, posting.amount_cents_after)
        if any(
            (p.reversal_id, p.movement, p.amount_cents_after) == once for p in self.state.reversal_postings.values()
        ):
            raise LedgerInvariantViolation("a reversal posted twice for one Stripe object and amount")  # unique key
        self.state.reversal_postings[posting.id] = posting

    def reversals(self) -> list[ReversalRecord]:
        return sorted(self.state.reversals.values(), key=lambda r: r.id)

    def reversal_postings(self) -> list[ReversalPostingRecord]:
        return sorted(self.state.reversal_postings.values(), key=lambda p: p.id)


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

    def add_sync_run(self, run: SyncRunRecord) -> None:
        self.state.sync_runs.append(replace(run, created_at=self.now))

    def last_sync_run(self) -> SyncRunRecord | None:
        return self.state.sync_runs[-1] if self.state.sync_runs else None


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


@dataclass
class FakeStripeSessions:
    """What Stripe holds, for the sync: sessions by id, listed by creation time.

    ``after_listing`` runs once the list has been read — where a test makes a late webhook
    arrive between the sync's reading and its writing.
    """

    name: str = "fake"
    sessions: dict[str, StripeSession] = field(default_factory=dict)
    after_listing: Callable[[], None] | None = None
    retrieved: list[str] = field(default_factory=list)

    def put(self, session: StripeSession) -> None:
        self.sessions[session.id] = session

    def list_sessions(self, *, created_since: datetime) -> Iterator[StripeSession]:
        listed = sorted((s for s in self.sessions.values() if s.created >= created_since), key=lambda s: s.created)
        if self.after_listing is not None:
            self.after_listing()
        return iter(listed)

    def retrieve_session(self, session_id: str) -> StripeSession | None:
        self.retrieved.append(session_id)
        return self.sessions.get(session_id)
