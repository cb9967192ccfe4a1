"""Refund and dispute money rules (SPEC §20), without a database.

The pure rules as tables (where a debit is taken from, what a refund's growing total still
owes, every dispute transition), then the webhook service on the in-memory unit of work:
the wallet the top-up credited gives what it holds, the rest is posted to
``uncollected_usage``, the books stay balanced, and each Stripe object and amount posts once
whatever the event id. The same rules on SQLite and PostgreSQL:
``tests/integration/test_stripe_reversals.py``.
"""

from __future__ import annotations

import pytest

from modelfaucet.domain.ledger import OwnerScope, Posting, Reason, SystemAccount, Transaction
from modelfaucet.domain.outcomes import InvalidRequest, NotFound
from modelfaucet.domain.reversals import (
    DisputeSays,
    Movement,
    ReversalOutcome,
    ReversalStatus,
    Split,
    decide_dispute,
    dispute_says,
    refund_increase,
    split_debit,
)
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.stripe_reversals import PAYMENT_NOT_FOUND_MESSAGE, ReversalApplied
from modelfaucet.services.stripe_webhook import outcome_from_record
from tests.fakes.memory import MemoryStore
from tests.stripe_memory_support import (
    USD,
    books_balance,
    charge,
    completed,
    credited,
    deliver,
    dispute,
    end_user,
    memory_ctx,
    pending,
    system_balance,
)

# --- the pure rules ------------------------------------------------------------------------

SPLITS = [
    ("the wallet holds it all", 5 * USD, 9 * USD, Split(5 * USD, 0)),
    ("the wallet holds exactly the amount", 5 * USD, 5 * USD, Split(5 * USD, 0)),
    ("the wallet holds part", 5 * USD, 2 * USD, Split(2 * USD, 3 * USD)),
    ("the wallet is empty", 5 * USD, 0, Split(0, 5 * USD)),
    ("one unit short", 5 * USD, 5 * USD - 1, Split(5 * USD - 1, 1)),
]


@pytest.mark.parametrize(("case", "amount", "available", "expected"), SPLITS, ids=[row[0] for row in SPLITS])
def test_a_debit_takes_what_the_wallet_holds_and_the_rest_from_uncollected(
    case: str, amount: int, available: int, expected: Split
) -> None:
    split = split_debit(amount, available)
    assert split == expected
    assert split.amount_units == amount


INCREASES = [
    ("a first partial refund", 0, 200, 200),
    ("a larger total later", 200, 500, 300),
    ("the same total again", 500, 500, 0),
    ("an older, smaller total arriving late", 500, 200, 0),
    ("a zero total", 0, 0, 0),
]


@pytest.mark.parametrize(("case", "posted", "total", "expected"), INCREASES, ids=[row[0] for row in INCREASES])
def test_a_refund_posts_only_what_its_total_grew_by(case: str, posted: int, total: int, expected: int) -> None:
    assert refund_increase(posted, total) == expected


OPEN, LOST, WON = ReversalStatus.OPEN, ReversalStatus.LOST, ReversalStatus.WON
DEBIT, REVERSE = Movement.DEBIT, Movement.REVERSE
# (status, what the event says) -> (status after, movement)
DISPUTES = [
    (None, DisputeSays.OPENED, OPEN, DEBIT),
    (None, DisputeSays.LOST, LOST, DEBIT),
    (None, DisputeSays.WON, WON, None),
    (None, DisputeSays.INQUIRY, None, None),
    (OPEN, DisputeSays.OPENED, OPEN, None),
    (OPEN, DisputeSays.LOST, LOST, None),
    (OPEN, DisputeSays.WON, WON, REVERSE),
    (OPEN, DisputeSays.INQUIRY, OPEN, None),
    (LOST, DisputeSays.OPENED, LOST, None),
    (LOST, DisputeSays.LOST, LOST, None),
    (LOST, DisputeSays.WON, WON, REVERSE),
    (WON, DisputeSays.OPENED, WON, None),
    (WON, DisputeSays.LOST, WON, None),
    (WON, DisputeSays.WON, WON, None),
]


@pytest.mark.parametrize(("status", "says", "after", "movement"), DISPUTES)
def test_a_dispute_withdraws_its_funds_once_and_reinstates_them_once_only_if_won(
    status: ReversalStatus | None, says: DisputeSays, after: ReversalStatus | None, movement: Movement | None
) -> None:
    decision = decide_dispute(status, says)
    assert (decision.status_after, decision.movement) == (after, movement)


@pytest.mark.parametrize(
    ("event_type", "stripe_status", "says"),
    [
        ("charge.dispute.created", "needs_response", DisputeSays.OPENED),
        ("charge.dispute.created", "warning_needs_response", DisputeSays.INQUIRY),
        ("charge.dispute.closed", "won", DisputeSays.WON),
        ("charge.dispute.closed", "lost", DisputeSays.LOST),
        ("charge.dispute.closed", "warning_closed", DisputeSays.INQUIRY),
    ],
)
def test_what_a_dispute_event_says_follows_its_type_and_status(
    event_type: str, stripe_status: str, says: DisputeSays
) -> None:
    assert dispute_says(event_type, stripe_status) is says


# --- the webhook service on the in-memory books ----------------------------------------


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def ctx(store: MemoryStore) -> ServiceContext:
    return memory_ctx(store)


def wallet_of(store: MemoryStore) -> str:
    return next(a.account_id for a in store.state.accounts.values() if a.owner_scope is OwnerScope.END_USER)


def spend(store: MemoryStore, units: int) -> None:
    """The end user spends ``units`` (as a usage event would: to the platform)."""
    with store() as uow:
        platform = uow.ledger.ensure(OwnerScope.PLATFORM, "platform")
        reason = Reason.USAGE_RETAIL_PRICE.value
        uow.ledger.post(
            Transaction.of(
                reason, [Posting.debit(wallet_of(store), units, reason), Posting.credit(platform, units, reason)]
            )
        )
        uow.commit()


def test_a_refund_after_the_credits_were_spent_empties_the_wallet_and_posts_the_rest_uncollected(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    user = end_user(store)
    credited(ctx, user, 5 * USD)
    spend(store, 4 * USD)

    applied = deliver(ctx, "evt_refund", "charge.refunded", charge(500))

    assert isinstance(applied, ReversalApplied)
    assert (applied.outcome, applied.wallet_units, applied.uncollected_units) == (
        ReversalOutcome.REFUND_POSTED,
        1 * USD,
        4 * USD,
    )
    assert store.balance_of(user.account_id) == 0
    assert system_balance(store, SystemAccount.UNCOLLECTED_USAGE) == -4 * USD
    assert system_balance(store, SystemAccount.STRIPE_CLEARING) == 0, "the money is back with the cardholder"
    assert books_balance(store) == 0
    transaction = store.state.transactions[str(applied.transaction_id)]
    assert transaction.reason == "stripe_refund"
    assert {p.reason for p in transaction.postings} == {"stripe_refund"}


def test_a_refund_the_wallet_still_holds_takes_nothing_from_uncollected(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    user = end_user(store, opening_units=10 * USD)
    credited(ctx, user, 5 * USD)

    applied = deliver(ctx, "evt_refund", "charge.refunded", charge(500))

    assert isinstance(applied, ReversalApplied)
    assert (applied.wallet_units, applied.uncollected_units) == (5 * USD, 0)
    assert store.balance_of(user.account_id) == 10 * USD
    assert len(store.state.transactions[str(applied.transaction_id)].postings) == 2, "no empty uncollected leg"


def test_partial_refunds_arrive_as_growing_totals_and_each_posts_only_its_increase(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    user = end_user(store)
    credited(ctx, user, 5 * USD)

    first = deliver(ctx, "evt_r1", "charge.refunded", charge(100))
    second = deliver(ctx, "evt_r2", "charge.refunded", charge(350))
    late_older = deliver(ctx, "evt_r0", "charge.refunded", charge(100))

    assert [r.outcome for r in (first, second, late_older)] == ["refund_posted", "refund_posted", "unchanged"]
    assert store.balance_of(user.account_id) == 5 * USD - 350 * 1_000_000
    [reversal] = store.state.stripe.reversals.values()
    assert (reversal.status, reversal.amount_cents) == ("refunded", 350)
    assert sorted(p.amount_cents_after for p in store.state.stripe.reversal_postings.values()) == [100, 350]


def test_a_refund_event_replayed_with_a_new_event_id_debits_nothing_more(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    user = end_user(store)
    credited(ctx, user, 5 * USD)
    deliver(ctx, "evt_refund", "charge.refunded", charge(200))
    commits = store.commits

    replayed = deliver(ctx, "evt_refund_resent", "charge.refunded", charge(200))
    duplicate = deliver(ctx, "evt_refund", "charge.refunded", charge(200))

    assert replayed.outcome == "unchanged" and replayed.transaction_id is None
    assert duplicate.duplicate and duplicate.outcome == "refund_posted", "the same event id answers its first answer"
    assert store.balance_of(user.account_id) == 3 * USD
    assert store.commits == commits + 1, "the replay stores its event only; the duplicate writes nothing"
    assert sum(1 for t in store.state.transactions.values() if t.reason == "stripe_refund") == 1


def test_a_dispute_won_after_being_lost_re_credits_what_its_debit_took(store: MemoryStore, ctx: ServiceContext) -> None:
    user = end_user(store)
    credited(ctx, user, 5 * USD)
    spend(store, 2 * USD)

    opened = deliver(ctx, "evt_d1", "charge.dispute.created", dispute(500, "needs_response"))
    lost = deliver(ctx, "evt_d2", "charge.dispute.closed", dispute(500, "lost"))
    assert store.balance_of(user.account_id) == 0
    assert system_balance(store, SystemAccount.UNCOLLECTED_USAGE) == -2 * USD
    won = deliver(ctx, "evt_d3", "charge.dispute.closed", dispute(500, "won"))
    won_again = deliver(ctx, "evt_d4", "charge.dispute.closed", dispute(500, "won"))

    assert [e.outcome for e in (opened, lost, won, won_again)] == [
        "dispute_debited",
        "dispute_lost",
        "dispute_reinstated",
        "unchanged",
    ]
    assert isinstance(won, ReversalApplied)
    assert (won.wallet_units, won.uncollected_units) == (3 * USD, 2 * USD)
    assert store.balance_of(user.account_id) == 3 * USD, "the wallet is back where the dispute found it"
    assert system_balance(store, SystemAccount.UNCOLLECTED_USAGE) == 0
    reasons = sorted(t.reason for t in store.state.transactions.values() if t.reason.startswith("stripe_dispute"))
    assert reasons == ["stripe_dispute", "stripe_dispute_reversal"]
    assert books_balance(store) == 0


def test_a_dispute_won_before_its_created_event_arrived_moves_nothing_ever(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    user = end_user(store)
    credited(ctx, user, 5 * USD)

    deliver(ctx, "evt_closed", "charge.dispute.closed", dispute(500, "won"))
    late = deliver(ctx, "evt_created", "charge.dispute.created", dispute(500, "needs_response"))

    assert late.outcome == "unchanged"
    assert store.balance_of(user.account_id) == 5 * USD
    assert not any(t.reason.startswith("stripe_dispute") for t in store.state.transactions.values())


def test_an_inquiry_moves_no_money_and_keeps_no_row(store: MemoryStore, ctx: ServiceContext) -> None:
    user = end_user(store)
    credited(ctx, user, 5 * USD)

    noted = deliver(ctx, "evt_inquiry", "charge.dispute.created", dispute(500, "warning_needs_response"))

    assert noted.outcome == "inquiry_noted"
    assert store.state.stripe.reversals == {}
    assert store.balance_of(user.account_id) == 5 * USD


@pytest.mark.parametrize(
    ("case", "event_type", "obj", "refusal"),
    [
        ("a refund above the top-up", "charge.refunded", charge(501), InvalidRequest),
        ("a refund in another currency", "charge.refunded", charge(100, currency="eur"), InvalidRequest),
        ("a refund without a PaymentIntent", "charge.refunded", charge(100, payment_intent=None), InvalidRequest),
        ("a negative refunded total", "charge.refunded", charge(-1), InvalidRequest),
        ("a dispute above the top-up", "charge.dispute.created", dispute(600, "needs_response"), InvalidRequest),
        ("a payment no top-up was paid by", "charge.refunded", charge(100, payment_intent="pi_other"), NotFound),
    ],
)
def test_a_refused_refund_or_dispute_writes_nothing(
    *, store: MemoryStore, ctx: ServiceContext, case: str, event_type: str, obj: dict[str, object], refusal: type
) -> None:
    user = end_user(store)
    credited(ctx, user, 5 * USD)
    commits = store.commits

    with pytest.raises(refusal) as refused:
        deliver(ctx, "evt_refused", event_type, obj)

    assert store.commits == commits
    assert "evt_refused" not in store.state.stripe.events
    if refusal is NotFound:
        assert refused.value.message == PAYMENT_NOT_FOUND_MESSAGE


def test_a_stored_answer_comes_back_as_the_same_typed_result(store: MemoryStore, ctx: ServiceContext) -> None:
    user = end_user(store)
    credited(ctx, user, 5 * USD)
    applied = deliver(ctx, "evt_refund", "charge.refunded", charge(250))

    restored = outcome_from_record(applied.to_record(), duplicate=True)

    assert isinstance(restored, ReversalApplied)
    assert restored == ReversalApplied(**{**vars_of(applied), "duplicate": True})


def vars_of(applied: object) -> dict[str, object]:
    return {name: getattr(applied, name) for name in applied.__slots__}  # type: ignore[attr-defined]


def test_a_payment_intent_that_already_paid_another_topup_credits_nothing(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    user = end_user(store)
    credited(ctx, user, 5 * USD, payment_intent="pi_1")
    other = pending(ctx, user, 3 * USD, key="another-checkout")
    commits = store.commits

    with pytest.raises(InvalidRequest, match="already paid another top-up"):
        deliver(ctx, "evt_reused", "checkout.session.completed", completed(other, payment_intent="pi_1"))

    assert store.commits == commits
    assert store.balance_of(user.account_id) == 5 * USD
