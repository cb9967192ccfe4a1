"""The three-way sync's rules (SPEC §20), without a database.

The outcome table of :func:`~modelfaucet.domain.stripe_sync.classify`, then the sync service
on the in-memory books against a fake of what Stripe holds: a lost webhook is credited once,
a second run adds nothing, a dry run writes nothing, a late webhook and a sync never credit
twice. The same against SQLite, PostgreSQL, the offline provider and the real library:
``tests/integration/test_stripe_sync.py`` and ``tests/e2e/test_stripe_sync_http.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from modelfaucet.adapters.stripe.sessions import StripeSession
from modelfaucet.domain.stripe_sync import (
    CHECKOUT_SESSION_LIFETIME,
    LocalView,
    StripeView,
    SyncOutcome,
    classify,
)
from modelfaucet.domain.topups import Payment, TopupStatus
from modelfaucet.services.checkout import CheckoutCreated
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.stripe_reversals import ReversalApplied
from modelfaucet.services.stripe_sync import SyncReport, SyncStripe, last_sync_flags, sync_stripe
from modelfaucet.services.unit_of_work import UnitOfWork
from tests.fakes.memory import MemoryStore
from tests.fakes.stripe import FakeStripeSessions
from tests.stripe_memory_support import (
    START,
    USD,
    Clock,
    charge,
    completed,
    deliver,
    end_user,
    memory_ctx,
    pending,
)

HOUR = timedelta(hours=1)

# --- the outcome table ---------------------------------------------------------------------

PAID = StripeView("complete", "paid", 500, "usd")
AWAITED = StripeView("complete", "unpaid", 500, "usd")
EXPIRED = StripeView("expired", "unpaid", 500, "usd")
OPEN = StripeView("open", "unpaid", 500, "usd")
P, C, F = TopupStatus.PENDING, TopupStatus.CREDITED, TopupStatus.FAILED

# (case, local status or None, age of the top-up, Stripe's view or None, outcome, payment applied)
ROWS = [
    ("paid in Stripe, pending here: the lost webhook", P, HOUR, PAID, SyncOutcome.CREDITED_NOW, Payment.PAID),
    ("paid and credited", C, HOUR, PAID, SyncOutcome.OK, None),
    ("paid in Stripe, failed here", F, HOUR, PAID, SyncOutcome.PAID_BUT_FAILED, None),
    ("expired in Stripe, pending here", P, HOUR, EXPIRED, SyncOutcome.EXPIRED_NOW, Payment.FAILED),
    ("expired in Stripe, credited here", C, HOUR, EXPIRED, SyncOutcome.CREDITED_BUT_UNPAID, None),
    ("expired and failed", F, HOUR, EXPIRED, SyncOutcome.OK, None),
    ("awaiting a delayed payment, pending", P, 3 * CHECKOUT_SESSION_LIFETIME, AWAITED, SyncOutcome.OK, None),
    ("awaiting a delayed payment, credited", C, HOUR, AWAITED, SyncOutcome.CREDITED_BUT_UNPAID, None),
    ("open and young", P, HOUR, OPEN, SyncOutcome.OK, None),
    (
        "open past the session lifetime",
        P,
        CHECKOUT_SESSION_LIFETIME + HOUR,
        OPEN,
        SyncOutcome.EXPIRED_NOW,
        Payment.FAILED,
    ),
    ("credited, open in Stripe", C, HOUR, OPEN, SyncOutcome.CREDITED_BUT_UNPAID, None),
    ("unknown to Stripe, young", P, HOUR, None, SyncOutcome.OK, None),
    (
        "unknown to Stripe, past the lifetime",
        P,
        2 * CHECKOUT_SESSION_LIFETIME,
        None,
        SyncOutcome.EXPIRED_NOW,
        Payment.FAILED,
    ),
    ("unknown to Stripe, credited", C, HOUR, None, SyncOutcome.CREDITED_BUT_UNPAID, None),
    (
        "another amount in Stripe",
        P,
        HOUR,
        StripeView("complete", "paid", 499, "usd"),
        SyncOutcome.AMOUNT_MISMATCH,
        None,
    ),
    (
        "another currency in Stripe",
        P,
        HOUR,
        StripeView("complete", "paid", 500, "eur"),
        SyncOutcome.CURRENCY_MISMATCH,
        None,
    ),
    ("Stripe's session unknown here", None, HOUR, PAID, SyncOutcome.UNKNOWN_LOCALLY, None),
]


@pytest.mark.parametrize(("case", "local", "age", "stripe", "outcome", "payment"), ROWS, ids=[row[0] for row in ROWS])
def test_each_session_gets_one_outcome(
    *,
    case: str,
    local: TopupStatus | None,
    age: timedelta,
    stripe: StripeView | None,
    outcome: SyncOutcome,
    payment: Payment | None,
) -> None:
    view = None if local is None else LocalView(local, 500, "usd", START - age)
    decision = classify(view, stripe, now=START)
    assert (decision.outcome, decision.payment) == (outcome, payment)


# --- the sync service on the in-memory books -------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def ctx(store: MemoryStore, clock: Clock) -> ServiceContext:
    return memory_ctx(store, clock)


@pytest.fixture
def stripe() -> FakeStripeSessions:
    return FakeStripeSessions()


@pytest.fixture
def topup(store: MemoryStore, ctx: ServiceContext) -> CheckoutCreated:
    return pending(ctx, end_user(store), 5 * USD)


def session(
    topup: CheckoutCreated, status: str = "complete", payment_status: str = "paid", *, amount_cents: int = 500
) -> StripeSession:
    return StripeSession(topup.checkout_session_id, status, payment_status, amount_cents, "usd", "pi_1", START)


def sync(
    ctx: ServiceContext, stripe: FakeStripeSessions, *, dry_run: bool = False, since: datetime | None = None
) -> SyncReport:
    return sync_stripe(
        ctx, SyncStripe(since=since, dry_run=dry_run), actor=Actor("operator"), sessions_factory=lambda _: stripe
    )


def credits(store: MemoryStore) -> int:
    return sum(1 for t in store.state.transactions.values() if t.reason == "stripe_checkout_topup")


def test_a_paid_session_whose_webhook_was_lost_is_credited_by_the_sync(
    store: MemoryStore, ctx: ServiceContext, stripe: FakeStripeSessions, topup: CheckoutCreated
) -> None:
    stripe.put(session(topup))

    report = sync(ctx, stripe)

    [row] = report.rows
    assert (row.outcome, row.stripe_status, row.local_status) == ("credited_now", "paid", "credited")
    assert store.balance_of(topup.wallet_id) == 5 * USD
    stored = store.state.stripe.topup_for(topup.checkout_session_id)
    assert stored.last_event_id == f"stripe_sync:{report.run_id}"
    assert stored.payment_intent_id == "pi_1", "refunds of this payment can find the top-up"
    actions = [(entry.actor, entry.action) for _, entry in store.state.audit]
    assert ("operator", "stripe.topup_credited") in actions
    assert actions[-1] == ("operator", "stripe.sync")


def test_a_second_sync_credits_nothing_more(
    store: MemoryStore, ctx: ServiceContext, stripe: FakeStripeSessions, topup: CheckoutCreated
) -> None:
    stripe.put(session(topup))
    sync(ctx, stripe)

    again = sync(ctx, stripe)

    assert [row.outcome for row in again.rows] == ["ok"]
    assert credits(store) == 1
    assert store.balance_of(topup.wallet_id) == 5 * USD


def test_a_dry_run_reports_what_it_would_do_and_writes_nothing(
    store: MemoryStore, ctx: ServiceContext, stripe: FakeStripeSessions, topup: CheckoutCreated
) -> None:
    stripe.put(session(topup))
    commits = store.commits

    report = sync(ctx, stripe, dry_run=True)

    assert report.dry_run and report.run_id is None
    assert [(row.outcome, row.local_status) for row in report.rows] == [("credited_now", "pending")]
    assert store.commits == commits
    assert store.balance_of(topup.wallet_id) == 0
    assert last_sync_flags(_reader(store)).last_sync_at is None


class WebhookJustBeforeWrites:
    """A unit-of-work factory that lets the late webhook land right before the sync's first write."""

    def __init__(self, store: MemoryStore, deliver_webhook: object) -> None:
        self.store, self.deliver_webhook, self.fired = store, deliver_webhook, False

    def __call__(self, *, read_only: bool = False, snapshot: bool = False, autocommit: bool = False) -> UnitOfWork:
        if not read_only and not snapshot and not self.fired:
            self.fired = True
            self.deliver_webhook()  # type: ignore[operator]
        return self.store(read_only=read_only, snapshot=snapshot)


def test_a_webhook_landing_between_the_syncs_read_and_its_write_is_the_only_credit(
    store: MemoryStore, ctx: ServiceContext, stripe: FakeStripeSessions, topup: CheckoutCreated
) -> None:
    stripe.put(session(topup))
    late = WebhookJustBeforeWrites(
        store, lambda: deliver(ctx, "evt_late", "checkout.session.completed", completed(topup))
    )
    racing = memory_ctx(store)
    racing = ServiceContext(db=racing.db, settings=racing.settings, clock=racing.clock, units=late)

    report = sync(racing, stripe)

    assert late.fired
    assert [row.outcome for row in report.rows] == ["ok"], "decided again on the locked top-up"
    assert credits(store) == 1
    assert store.state.stripe.topup_for(topup.checkout_session_id).last_event_id == "evt_late"
    assert store.balance_of(topup.wallet_id) == 5 * USD


def test_a_webhook_arriving_after_the_sync_credited_changes_nothing(
    store: MemoryStore, ctx: ServiceContext, stripe: FakeStripeSessions, topup: CheckoutCreated
) -> None:
    stripe.put(session(topup))
    sync(ctx, stripe)

    late = deliver(ctx, "evt_late", "checkout.session.completed", completed(topup))

    assert late.outcome == "already_credited"
    assert credits(store) == 1


def test_a_pending_topup_older_than_the_session_lifetime_is_expired(
    store: MemoryStore, ctx: ServiceContext, clock: Clock, stripe: FakeStripeSessions, topup: CheckoutCreated
) -> None:
    young = sync(ctx, stripe)
    clock.advance(CHECKOUT_SESSION_LIFETIME + HOUR)
    old = sync(ctx, stripe)

    assert [row.outcome for row in young.rows] == ["ok"]
    assert [(row.outcome, row.local_status, row.stripe_status) for row in old.rows] == [("expired_now", "failed", None)]
    assert stripe.retrieved == [topup.checkout_session_id] * 2, "Stripe is asked for a session it did not list"
    assert store.state.stripe.topup_for(topup.checkout_session_id).status == "failed"


def test_the_default_window_reaches_the_oldest_pending_topup(
    store: MemoryStore, ctx: ServiceContext, clock: Clock, stripe: FakeStripeSessions, topup: CheckoutCreated
) -> None:
    clock.advance(timedelta(days=30))

    report = sync(ctx, stripe)

    assert report.since == START
    assert [row.outcome for row in report.rows] == ["expired_now"]


def test_a_session_unknown_here_is_flagged_and_never_credited(
    store: MemoryStore, ctx: ServiceContext, stripe: FakeStripeSessions
) -> None:
    stripe.put(StripeSession("cs_test_stranger", "complete", "paid", 900, "usd", "pi_9", START))

    report = sync(ctx, stripe)

    [row] = report.rows
    assert (row.outcome, row.topup_id, row.amount_units) == ("unknown_locally", None, 9 * USD)
    assert not report.ok
    assert credits(store) == 0
    flags = last_sync_flags(_reader(store))
    assert [r.checkout_session_id for r in flags.flagged] == ["cs_test_stranger"]
    assert flags.as_dict()["ok"] is False


@pytest.mark.parametrize(
    ("case", "stripe_session", "outcome"),
    [
        ("another amount", {"amount_cents": 499}, "amount_mismatch"),
        ("unpaid in Stripe", {"payment_status": "unpaid"}, "ok"),
    ],
)
def test_a_session_stripe_does_not_call_paid_for_the_topups_amount_credits_nothing(
    *,
    store: MemoryStore,
    ctx: ServiceContext,
    stripe: FakeStripeSessions,
    topup: CheckoutCreated,
    case: str,
    stripe_session: dict[str, object],
    outcome: str,
) -> None:
    stripe.put(session(topup, **stripe_session))  # type: ignore[arg-type]

    report = sync(ctx, stripe)

    assert [row.outcome for row in report.rows] == [outcome]
    assert credits(store) == 0


def test_a_credited_topup_stripe_calls_unpaid_is_flagged_and_kept(
    store: MemoryStore, ctx: ServiceContext, stripe: FakeStripeSessions, topup: CheckoutCreated
) -> None:
    deliver(ctx, "evt_paid", "checkout.session.completed", completed(topup))
    stripe.put(session(topup, "expired", "unpaid"))

    report = sync(ctx, stripe)

    assert [row.outcome for row in report.rows] == ["credited_but_unpaid"]
    assert store.balance_of(topup.wallet_id) == 5 * USD, "a flag, never a silent debit"


def test_after_the_sync_credited_a_lost_webhook_its_refund_finds_the_topup(
    store: MemoryStore, ctx: ServiceContext, stripe: FakeStripeSessions, topup: CheckoutCreated
) -> None:
    stripe.put(session(topup))
    sync(ctx, stripe)

    refunded = deliver(ctx, "evt_refund", "charge.refunded", charge(500))

    assert isinstance(refunded, ReversalApplied) and refunded.outcome == "refund_posted"
    assert store.balance_of(topup.wallet_id) == 0


def _reader(store: MemoryStore) -> UnitOfWork:
    uow = store(read_only=True)
    return uow.__enter__()


def test_a_topup_credited_without_its_payment_intent_learns_it_from_the_sync(
    store: MemoryStore, ctx: ServiceContext, stripe: FakeStripeSessions, topup: CheckoutCreated
) -> None:
    deliver(ctx, "evt_old_style", "checkout.session.completed", completed(topup, payment_intent=None))
    stripe.put(session(topup))

    report = sync(ctx, stripe)
    refunded = deliver(ctx, "evt_refund", "charge.refunded", charge(100))

    assert [row.outcome for row in report.rows] == ["ok"]
    assert store.state.stripe.topup_for(topup.checkout_session_id).payment_intent_id == "pi_1"
    assert refunded.outcome == "refund_posted"
    assert credits(store) == 1
