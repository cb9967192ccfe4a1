"""The top-up credit rules, on the in-memory unit of work: no database, well under a second.

The same service code as in production (``create_checkout_session``,
``handle_stripe_webhook``) runs against fake repositories and a recording Checkout
provider; the SQL behaviour of the same rules, concurrency included, is covered on SQLite
and PostgreSQL in ``tests/integration/test_topup_webhook.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from modelfaucet.config import Settings
from modelfaucet.domain.ledger import OwnerScope, SystemAccount
from modelfaucet.domain.outcomes import IdempotencyConflict, InvalidRequest, InvalidState, NotFound
from modelfaucet.domain.topups import TopupOutcome, TopupStatus
from modelfaucet.services.checkout import CheckoutCommand, CheckoutCreated, create_checkout_session
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.sessions import SessionUser
from modelfaucet.services.stripe_webhook import TOPUP_NOT_FOUND_MESSAGE, WebhookOutcome, handle_stripe_webhook
from tests.fakes.memory import MemoryStore
from tests.fakes.stripe import RecordingCheckoutProvider

USD = 100_000_000
FIVE_USD = 5 * USD
COMPLETED = "checkout.session.completed"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
ASYNC_FAILED = "checkout.session.async_payment_failed"
EXPIRED = "checkout.session.expired"


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))


@pytest.fixture
def ctx(store: MemoryStore) -> ServiceContext:
    return ServiceContext(db=None, settings=Settings(database_url="sqlite://"), units=store)  # type: ignore[arg-type]


@pytest.fixture
def stripe() -> RecordingCheckoutProvider:
    return RecordingCheckoutProvider()


@pytest.fixture
def user(store: MemoryStore) -> SessionUser:
    wallet = store.open_account(OwnerScope.END_USER, "end-user-1")
    return SessionUser(
        "session-1", "end-user-1", "app-1", "app_pub_demo", wallet, None, datetime.max.replace(tzinfo=UTC)
    )


def checkout(
    ctx: ServiceContext,
    user: SessionUser,
    stripe: RecordingCheckoutProvider,
    *,
    amount_units: int = FIVE_USD,
    key: str | None = None,
    success_url: str = "https://app.example/ok",
    cancel_url: str = "https://app.example/cancel",
) -> CheckoutCreated:
    command = CheckoutCommand(amount_units, success_url, cancel_url, key)
    return create_checkout_session(ctx, user, command, provider_factory=lambda _: stripe).result


@pytest.fixture
def topup(ctx: ServiceContext, user: SessionUser, stripe: RecordingCheckoutProvider) -> CheckoutCreated:
    return checkout(ctx, user, stripe)


def deliver(ctx: ServiceContext, session_id: str, event_type: str = COMPLETED, **changes: Any) -> WebhookOutcome:
    session: dict[str, Any] = {"id": session_id, "amount_total": 500, "currency": "usd", "payment_status": "paid"}
    event = {"id": changes.pop("event_id", "evt_1"), "type": event_type, "data": {"object": session | changes}}
    return handle_stripe_webhook(ctx, payload=json.dumps(event).encode(), signature_header=None)


def clearing_balance(store: MemoryStore) -> int:
    return sum(a.balance_units for a in store.state.accounts.values() if a.owner_id == SystemAccount.STRIPE_CLEARING)


def topup_transactions(store: MemoryStore) -> int:
    return sum(1 for t in store.state.transactions.values() if t.reason == "stripe_checkout_topup")


def test_a_paid_completion_credits_the_pending_topup_once(
    store: MemoryStore, ctx: ServiceContext, user: SessionUser, topup: CheckoutCreated
) -> None:
    credited = deliver(ctx, topup.checkout_session_id)

    assert (credited.outcome, credited.status) == (TopupOutcome.CREDITED, TopupStatus.CREDITED)
    assert store.balance_of(user.account_id) == FIVE_USD
    assert clearing_balance(store) == -FIVE_USD
    assert topup_transactions(store) == 1
    stored = store.state.stripe.topup_for(topup.checkout_session_id)
    assert (stored.status, stored.last_event_id) == ("credited", "evt_1")
    assert stored.transaction_id == credited.transaction_id
    credit = store.state.transactions[str(credited.transaction_id)]
    assert (credit.reference_type, credit.reference_id) == ("stripe_topup", topup.topup_id)
    actions = [entry.action for _, entry in store.state.audit]
    assert actions == ["stripe.checkout_created", "stripe.topup_credited"]


@pytest.mark.parametrize("second_event_type", [COMPLETED, ASYNC_SUCCEEDED])
def test_a_second_event_for_the_same_session_credits_nothing(
    store: MemoryStore, ctx: ServiceContext, user: SessionUser, topup: CheckoutCreated, second_event_type: str
) -> None:
    deliver(ctx, topup.checkout_session_id, event_id="evt_first")
    again = deliver(ctx, topup.checkout_session_id, second_event_type, event_id="evt_second")

    assert (again.outcome, again.status, again.transaction_id) == (TopupOutcome.ALREADY_CREDITED, "credited", None)
    assert store.balance_of(user.account_id) == FIVE_USD
    assert topup_transactions(store) == 1
    assert store.state.stripe.events["evt_second"].status == "processed"


def test_the_same_event_again_credits_nothing_and_answers_what_it_answered_first(
    store: MemoryStore, ctx: ServiceContext, user: SessionUser, topup: CheckoutCreated
) -> None:
    first = deliver(ctx, topup.checkout_session_id)
    commits = store.commits
    again = deliver(ctx, topup.checkout_session_id)

    assert again.duplicate and not first.duplicate
    assert again.to_record() == first.to_record()
    assert store.commits == commits, "a duplicate writes nothing"
    assert store.balance_of(user.account_id) == FIVE_USD


MISMATCHES = [
    ("an amount one cent short", {"amount_total": 499}),
    ("an amount one cent over", {"amount_total": 501}),
    ("no amount", {"amount_total": None}),
    ("a boolean amount", {"amount_total": True}),
    ("another currency", {"currency": "eur"}),
    ("no currency", {"currency": None}),
]


@pytest.mark.parametrize(("case", "changes"), MISMATCHES, ids=[case for case, _ in MISMATCHES])
@pytest.mark.parametrize("event_type", [COMPLETED, ASYNC_SUCCEEDED])
def test_an_amount_or_currency_mismatch_credits_nothing(
    *,
    store: MemoryStore,
    ctx: ServiceContext,
    user: SessionUser,
    topup: CheckoutCreated,
    event_type: str,
    case: str,
    changes: dict[str, Any],
) -> None:
    commits = store.commits
    with pytest.raises(InvalidRequest, match="does not match the pending top-up; nothing was credited"):
        deliver(ctx, topup.checkout_session_id, event_type, **changes)

    assert store.commits == commits, "a refused event writes nothing, not even its event row"
    assert store.state.stripe.events == {}
    assert store.state.stripe.topup_for(topup.checkout_session_id).status == "pending"
    assert store.balance_of(user.account_id) == 0


@pytest.mark.parametrize("event_type", [EXPIRED, ASYNC_FAILED])
def test_expiry_or_a_failed_payment_marks_the_pending_topup_failed(
    store: MemoryStore, ctx: ServiceContext, user: SessionUser, topup: CheckoutCreated, event_type: str
) -> None:
    failed = deliver(ctx, topup.checkout_session_id, event_type, amount_total=None)

    assert (failed.outcome, failed.status, failed.transaction_id) == (TopupOutcome.FAILED, "failed", None)
    assert store.state.stripe.topup_for(topup.checkout_session_id).status == "failed"
    [*_, (_, entry)] = store.state.audit
    assert (entry.action, entry.before_status, entry.after_status, entry.note) == (
        "stripe.topup_failed",
        "pending",
        "failed",
        event_type,
    )
    with pytest.raises(InvalidState, match="is failed; it cannot be credited"):
        deliver(ctx, topup.checkout_session_id, event_id="evt_late_payment")
    assert store.balance_of(user.account_id) == 0
    assert topup_transactions(store) == 0


# One row per story: the events in order, the top-up's status at the end, what was credited.
STORIES = [
    ("paid", [COMPLETED], "credited", FIVE_USD),
    ("unpaid, then paid later", [f"{COMPLETED}:unpaid", ASYNC_SUCCEEDED], "credited", FIVE_USD),
    ("unpaid, then the payment fails", [f"{COMPLETED}:unpaid", ASYNC_FAILED], "failed", 0),
    ("paid, then a late expiry", [COMPLETED, EXPIRED], "credited", FIVE_USD),
    ("paid twice by different events", [COMPLETED, ASYNC_SUCCEEDED], "credited", FIVE_USD),
    ("expired twice", [EXPIRED, EXPIRED], "failed", 0),
    ("failed, then completed unpaid", [ASYNC_FAILED, f"{COMPLETED}:unpaid"], "failed", 0),
]


@pytest.mark.parametrize(("story", "events", "status", "credited"), STORIES, ids=[row[0] for row in STORIES])
def test_any_order_of_events_credits_at_most_once(
    *,
    store: MemoryStore,
    ctx: ServiceContext,
    user: SessionUser,
    topup: CheckoutCreated,
    story: str,
    events: list[str],
    status: str,
    credited: int,
) -> None:
    for number, event in enumerate(events):
        event_type, _, variant = event.partition(":")
        payment_status = "unpaid" if variant else "paid"
        deliver(ctx, topup.checkout_session_id, event_type, event_id=f"evt_{number}", payment_status=payment_status)

    assert store.state.stripe.topup_for(topup.checkout_session_id).status == status
    assert store.balance_of(user.account_id) == credited
    assert sum(account.balance_units for account in store.state.accounts.values()) == 0


def test_an_unknown_session_is_not_found_with_the_message_the_replay_tool_relies_on(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    with pytest.raises(NotFound) as refused:
        deliver(ctx, "cs_test_unknown")
    assert refused.value.message == TOPUP_NOT_FOUND_MESSAGE
    assert store.state.stripe.events == {}


def test_other_event_types_are_stored_and_ignored(store: MemoryStore, ctx: ServiceContext) -> None:
    ignored = deliver(ctx, "cs_test_any", "customer.created", event_id="evt_other")
    assert ignored.outcome is None
    assert ignored.to_record() == {"received": True, "ignored": True, "event_id": "evt_other"}
    assert store.state.stripe.events["evt_other"].status == "ignored"


# --- checkout: one session per key, and a reused key must mean the same request -------------


def test_a_retried_checkout_with_the_same_key_answers_the_first_session_without_asking_stripe(
    store: MemoryStore, ctx: ServiceContext, user: SessionUser, stripe: RecordingCheckoutProvider
) -> None:
    first = checkout(ctx, user, stripe, key="checkout-key-1")
    again = checkout(ctx, user, stripe, key="checkout-key-1")

    assert again == first
    assert len(stripe.requests) == 1
    assert len(store.state.stripe.topups) == 1


@pytest.mark.parametrize(
    ("changes", "differing"),
    [
        ({"success_url": "https://app.example/other-ok"}, ["success_url"]),
        ({"cancel_url": "https://app.example/other-cancel"}, ["cancel_url"]),
        ({"amount_units": 6 * USD}, ["amount_usd"]),
        ({"amount_units": 6 * USD, "cancel_url": "https://app.example/x"}, ["amount_usd", "cancel_url"]),
    ],
)
def test_a_reused_checkout_key_with_another_request_is_a_conflict_naming_the_fields(
    *,
    store: MemoryStore,
    ctx: ServiceContext,
    user: SessionUser,
    stripe: RecordingCheckoutProvider,
    changes: dict[str, Any],
    differing: list[str],
) -> None:
    checkout(ctx, user, stripe, key="checkout-key-1")
    with pytest.raises(IdempotencyConflict) as refused:
        checkout(ctx, user, stripe, key="checkout-key-1", **changes)

    assert refused.value.details["differing_fields"] == differing
    assert len(stripe.requests) == 1, "a conflicting request never reaches Stripe"
    assert len(store.state.stripe.topups) == 1


@pytest.mark.parametrize("key", ["short", "with space", "tab\tinside", "x" * 129, "ключ-ключ"])
def test_a_checkout_key_follows_the_one_key_rule(
    ctx: ServiceContext, user: SessionUser, stripe: RecordingCheckoutProvider, key: str
) -> None:
    with pytest.raises(InvalidRequest, match="visible ASCII"):
        checkout(ctx, user, stripe, key=key)
    assert stripe.requests == []


def test_a_checkout_records_a_pending_topup_of_whole_cents(
    store: MemoryStore, ctx: ServiceContext, user: SessionUser, stripe: RecordingCheckoutProvider
) -> None:
    created = checkout(ctx, user, stripe)
    [sent] = stripe.requests
    assert (sent.amount_cents, sent.currency, sent.client_reference_id) == (500, "usd", user.account_id)
    assert (created.status, created.amount_units, created.wallet_id) == ("pending", FIVE_USD, user.account_id)
    assert store.state.stripe.topup_for(created.checkout_session_id).created_at == store.clock()
    with pytest.raises(InvalidRequest, match="amount_usd"):
        checkout(ctx, user, stripe, amount_units=FIVE_USD + 1)
