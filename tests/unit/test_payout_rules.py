"""The payout rules, on the in-memory unit of work: no database.

The same service code as in production (``run_mock_payouts``, ``review_payout``) runs
against fake repositories. The SQL behaviour of the same rules, concurrency included, is
covered on SQLite and PostgreSQL in ``tests/integration/test_payouts*.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelfaucet.config import Settings
from modelfaucet.domain.ledger import OwnerScope, Reason
from modelfaucet.domain.outcomes import Forbidden, InvalidRequest, InvalidState, NotFound
from modelfaucet.domain.payouts import Effect, PayoutAction, PayoutStatus
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.payout_queries import get_payout, list_payouts
from modelfaucet.services.review_payout import PayoutReviewed, ReviewPayout, review_payout
from modelfaucet.services.run_payouts import run_mock_payouts
from tests.fakes.memory import MemoryStore

USD = 100_000_000
MAKER = Actor("alice", request_id="req_maker")
CHECKER = Actor("bob", request_id="req_checker")
APPROVE, MARK_PAID, CANCEL, MARK_FAILED = (
    PayoutAction.APPROVE,
    PayoutAction.MARK_PAID,
    PayoutAction.CANCEL,
    PayoutAction.MARK_FAILED,
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    return MemoryStore(clock=clock)


def context(store: MemoryStore, **settings: object) -> ServiceContext:
    return ServiceContext(db=None, settings=Settings(database_url="sqlite://", **settings), units=store)  # type: ignore[arg-type]


@pytest.fixture
def ctx(store: MemoryStore) -> ServiceContext:
    return context(store)


def developer(store: MemoryStore, revenue_units: int, *, name: str = "dev-1", status: str = "active") -> str:
    """A developer wallet with ``revenue_units`` credited; returns the wallet id."""
    store.state.payouts.developers[name] = status
    return store.open_account(OwnerScope.DEVELOPER, name, revenue_units)


def wallet(store: MemoryStore, wallet_id: str) -> tuple[int, int]:
    account = store.state.accounts[wallet_id]
    return account.balance_units, account.reserved_units


def payment_postings(store: MemoryStore) -> list[tuple[str, int]]:
    return [(p[2], p[3]) for p in store.state.postings if p[4] == Reason.MOCK_PAYOUT_PAID.value]


def review(ctx: ServiceContext, payout_id: str, action: PayoutAction, actor: Actor = CHECKER) -> PayoutReviewed:
    return review_payout(ctx, ReviewPayout(payout_id, action, operator_note=f"{action} note"), actor=actor)


# --- run-mock -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("revenue", "threshold", "minimum", "expected_amount"),
    [
        (5 * USD, USD, USD, 5 * USD),
        (5 * USD, 5 * USD, USD, 5 * USD),
        (5 * USD, 5 * USD + 1, USD, None),
        (1, 1, 1, 1),
        (0, 1, 1, None),  # nothing payable is never a payout, whatever the threshold
        (USD - 1, 1, USD, None),  # below the minimum payout: a low threshold does not lower it
        (USD, 1, USD, USD),
    ],
)
def test_run_mock_opens_a_payout_of_the_whole_available_balance_once_it_reaches_the_threshold_and_the_minimum(
    store: MemoryStore, revenue: int, threshold: int, minimum: int, expected_amount: int | None
) -> None:
    ctx = context(store, payout_minimum_units=minimum)
    wallet_id = developer(store, revenue)
    postings_before = len(store.state.postings)
    opened = run_mock_payouts(ctx, actor=MAKER, threshold_units=threshold)
    if expected_amount is None:
        assert opened == []
        assert wallet(store, wallet_id) == (revenue, 0)
        return
    [payout] = opened
    assert (payout.developer_id, payout.account_id, payout.amount_units) == ("dev-1", wallet_id, expected_amount)
    assert (payout.status, payout.provider, payout.created_by) == (PayoutStatus.PENDING, "mock", "alice")
    assert wallet(store, wallet_id) == (revenue, expected_amount), "reserved, not moved"
    assert len(store.state.postings) == postings_before
    assert store.state.payouts.payouts == {payout.id: payout}


@pytest.mark.parametrize("threshold", [0, -1])
def test_run_mock_refuses_a_threshold_that_is_not_greater_than_zero_and_opens_nothing(
    store: MemoryStore, ctx: ServiceContext, threshold: int
) -> None:
    wallet_id = developer(store, 5 * USD)
    with pytest.raises(InvalidRequest) as refused:
        run_mock_payouts(ctx, actor=MAKER, threshold_units=threshold)
    assert refused.value.details == {"field": "threshold_usd"}
    assert store.state.payouts.payouts == {}
    assert wallet(store, wallet_id) == (5 * USD, 0)


def test_run_mock_defaults_to_the_configured_threshold(store: MemoryStore) -> None:
    developer(store, 2 * USD)
    assert run_mock_payouts(context(store, payout_threshold_units=3 * USD), actor=MAKER) == []
    assert len(run_mock_payouts(context(store, payout_threshold_units=2 * USD), actor=MAKER)) == 1


def test_run_mock_pays_only_the_available_balance_and_skips_inactive_developers(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    active = developer(store, 5 * USD, name="dev-a")
    developer(store, 5 * USD, name="dev-s", status="suspended")
    with store() as uow:
        uow.ledger.change_reserved(active, 2 * USD)  # held by something else
        uow.commit()
    [payout] = run_mock_payouts(ctx, actor=MAKER, threshold_units=USD)
    assert (payout.developer_id, payout.amount_units) == ("dev-a", 3 * USD)
    assert wallet(store, active) == (5 * USD, 5 * USD)


def test_a_developer_with_an_open_payout_gets_no_second_one_until_it_closes(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    wallet_id = developer(store, 5 * USD)
    [first] = run_mock_payouts(ctx, actor=MAKER, threshold_units=USD)
    store.open_account(OwnerScope.DEVELOPER, "dev-1", 3 * USD)  # more revenue arrives
    assert run_mock_payouts(ctx, actor=MAKER, threshold_units=USD) == []
    review(ctx, first.id, APPROVE)
    assert run_mock_payouts(ctx, actor=MAKER, threshold_units=USD) == [], "processing is still open"
    review(ctx, first.id, MARK_PAID)
    [second] = run_mock_payouts(ctx, actor=MAKER, threshold_units=USD)
    assert second.amount_units == 3 * USD
    assert wallet(store, wallet_id) == (3 * USD, 3 * USD)


def test_revenue_within_the_hold_period_is_not_payable_yet(store: MemoryStore, clock: Clock) -> None:
    held = context(store, payout_hold_days=7)
    wallet_id = developer(store, 4 * USD)
    clock.now += timedelta(days=5)
    store.open_account(OwnerScope.DEVELOPER, "dev-1", 2 * USD)
    assert run_mock_payouts(held, actor=MAKER, threshold_units=USD) == []  # all of it is held
    clock.now += timedelta(days=3)  # the first credit is 8 days old, the second 3
    [payout] = run_mock_payouts(held, actor=MAKER, threshold_units=USD)
    assert payout.amount_units == 4 * USD
    assert wallet(store, wallet_id) == (6 * USD, 4 * USD)


def test_run_mock_declares_one_audit_entry_per_payout_it_opens(store: MemoryStore, ctx: ServiceContext) -> None:
    developer(store, 5 * USD, name="dev-a")
    developer(store, 2 * USD, name="dev-b")
    opened = run_mock_payouts(ctx, actor=MAKER, threshold_units=USD)
    entries = [entry for _, entry in store.state.audit]
    assert [(e.action, e.resource_id, e.after_status, e.amount_units) for e in entries] == [
        ("payout.create", p.id, "pending", p.amount_units) for p in opened
    ]
    assert {e.request_id for e in entries} == {"req_maker"}


# --- review: the transition table through the service -----------------------------------

# actions after run-mock → (final status, balance, reserved, payment postings); 5 USD revenue
SEQUENCES = [
    ([APPROVE], PayoutStatus.PROCESSING, 5 * USD, 5 * USD, 0),
    ([APPROVE, MARK_PAID], PayoutStatus.PAID, 0, 0, 2),
    ([APPROVE, MARK_PAID, MARK_PAID], PayoutStatus.PAID, 0, 0, 2),
    ([APPROVE, APPROVE, MARK_PAID], PayoutStatus.PAID, 0, 0, 2),
    ([CANCEL], PayoutStatus.CANCELLED, 5 * USD, 0, 0),
    ([APPROVE, CANCEL], PayoutStatus.CANCELLED, 5 * USD, 0, 0),
    ([APPROVE, MARK_FAILED], PayoutStatus.FAILED, 5 * USD, 0, 0),
]


@pytest.mark.parametrize(("actions", "final", "balance", "reserved", "postings"), SEQUENCES)
def test_each_action_moves_the_payout_and_the_wallet_as_the_table_says(  # noqa: PLR0917
    store: MemoryStore,
    ctx: ServiceContext,
    actions: list[PayoutAction],
    final: PayoutStatus,
    balance: int,
    reserved: int,
    postings: int,
) -> None:
    wallet_id = developer(store, 5 * USD)
    [payout] = run_mock_payouts(ctx, actor=MAKER, threshold_units=USD)
    for action in actions:
        review(ctx, payout.id, action)
    assert store.state.payouts.payouts[payout.id].status is final
    assert wallet(store, wallet_id) == (balance, reserved)
    assert len(payment_postings(store)) == postings
    assert sum(account.balance_units for account in store.state.accounts.values()) == 0


def test_approve_then_mark_paid_posts_the_payment_once_and_releases_the_reservation(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    wallet_id = developer(store, 5 * USD)
    [payout] = run_mock_payouts(ctx, actor=MAKER, threshold_units=USD)
    approved = review(ctx, payout.id, APPROVE)
    assert (approved.effect, approved.payout.status) == (Effect.TRANSITION, PayoutStatus.PROCESSING)
    assert (approved.payout.approved_by, approved.payout.operator_note) == ("bob", "approve note")
    paid = review(ctx, payout.id, MARK_PAID)
    assert paid.payout.status is PayoutStatus.PAID
    assert paid.payout.provider_payout_id is not None and paid.payout.provider_payout_id.startswith("po_mock_")
    assert paid.payout.operator_note == "mark_paid note"
    clearing = next(a.account_id for a in store.state.accounts.values() if a.owner_id == "payout_clearing")
    assert sorted(payment_postings(store)) == sorted([(wallet_id, -5 * USD), (clearing, 5 * USD)])
    transaction = store.state.transactions[paid.payout.transaction_id or ""]
    assert (transaction.reference_type, transaction.reference_id) == ("payout", payout.id)
    assert wallet(store, wallet_id) == (0, 0)

    commits = store.commits
    again = review(ctx, payout.id, MARK_PAID)
    assert (again.effect, again.payout) == (Effect.UNCHANGED, paid.payout)
    assert store.commits == commits, "a repeated mark-paid writes nothing"
    assert len(payment_postings(store)) == 2


@pytest.mark.parametrize(
    ("before", "refused"),
    [
        ([], MARK_PAID),
        ([], MARK_FAILED),
        ([CANCEL], APPROVE),
        ([CANCEL], CANCEL),
        ([CANCEL], MARK_PAID),
        ([APPROVE, MARK_PAID], CANCEL),
        ([APPROVE, MARK_PAID], MARK_FAILED),
        ([APPROVE, MARK_FAILED], MARK_PAID),
        ([APPROVE, MARK_FAILED], APPROVE),
    ],
)
def test_an_action_the_table_refuses_is_invalid_state_and_writes_nothing(
    store: MemoryStore, ctx: ServiceContext, before: list[PayoutAction], refused: PayoutAction
) -> None:
    wallet_id = developer(store, 5 * USD)
    [payout] = run_mock_payouts(ctx, actor=MAKER, threshold_units=USD)
    for action in before:
        review(ctx, payout.id, action)
    stored, books, commits = store.state.payouts.payouts[payout.id], wallet(store, wallet_id), store.commits
    with pytest.raises(InvalidState) as refusal:
        review(ctx, payout.id, refused)
    assert refusal.value.details == {"payout_id": payout.id, "status": str(stored.status), "action": str(refused)}
    assert (store.state.payouts.payouts[payout.id], wallet(store, wallet_id), store.commits) == (stored, books, commits)


def test_mark_paid_before_approval_is_refused_and_keeps_the_reservation(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    wallet_id = developer(store, 5 * USD)
    [payout] = run_mock_payouts(ctx, actor=MAKER, threshold_units=USD)
    with pytest.raises(InvalidState, match="approved"):
        review(ctx, payout.id, MARK_PAID)
    assert wallet(store, wallet_id) == (5 * USD, 5 * USD)
    assert payment_postings(store) == []


def test_each_transition_declares_one_audit_entry_with_both_statuses(store: MemoryStore, ctx: ServiceContext) -> None:
    developer(store, 5 * USD)
    [payout] = run_mock_payouts(ctx, actor=MAKER, threshold_units=USD)
    review(ctx, payout.id, APPROVE)
    review(ctx, payout.id, APPROVE)  # unchanged: no entry
    paid = review(ctx, payout.id, MARK_PAID)
    entries = [entry for _, entry in store.state.audit]
    assert [(e.action, e.before_status, e.after_status, e.actor) for e in entries] == [
        ("payout.create", None, "pending", "alice"),
        ("payout.approve", "pending", "processing", "bob"),
        ("payout.mark_paid", "processing", "paid", "bob"),
    ]
    assert entries[2].details == {
        "developer_id": "dev-1",
        "wallet_id": payout.account_id,
        "transaction_id": paid.payout.transaction_id,
        "provider_payout_id": paid.payout.provider_payout_id,
    }


def test_an_unknown_payout_is_not_found(ctx: ServiceContext) -> None:
    with pytest.raises(NotFound):
        review(ctx, "00000000-0000-4000-8000-000000000000", APPROVE)
    with pytest.raises(NotFound):
        get_payout(ctx, "00000000-0000-4000-8000-000000000000")


# --- maker-checker ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("distinct_approver", "approver", "allowed"),
    [
        (True, MAKER, False),
        (True, CHECKER, True),
        (False, MAKER, True),
        (False, CHECKER, True),
    ],
)
def test_with_maker_checker_whoever_opened_a_payout_cannot_approve_it(
    store: MemoryStore, distinct_approver: bool, approver: Actor, allowed: bool
) -> None:
    ctx = context(store, payout_require_distinct_approver=distinct_approver)
    developer(store, 5 * USD)
    [payout] = run_mock_payouts(ctx, actor=MAKER, threshold_units=USD)
    if allowed:
        assert review(ctx, payout.id, APPROVE, actor=approver).payout.approved_by == approver.name
        return
    commits = store.commits
    with pytest.raises(Forbidden, match="another named operator"):
        review(ctx, payout.id, APPROVE, actor=approver)
    assert store.commits == commits
    assert store.state.payouts.payouts[payout.id].status is PayoutStatus.PENDING


def test_maker_checker_does_not_stop_the_maker_from_cancelling(store: MemoryStore) -> None:
    ctx = context(store, payout_require_distinct_approver=True)
    developer(store, 5 * USD)
    [payout] = run_mock_payouts(ctx, actor=MAKER, threshold_units=USD)
    assert review(ctx, payout.id, CANCEL, actor=MAKER).payout.status is PayoutStatus.CANCELLED


# --- reads --------------------------------------------------------------------------------


def test_payouts_are_listed_newest_first_and_by_status(store: MemoryStore, ctx: ServiceContext, clock: Clock) -> None:
    developer(store, 5 * USD, name="dev-a")
    [older] = run_mock_payouts(ctx, actor=MAKER, threshold_units=USD)
    clock.now += timedelta(minutes=1)
    developer(store, 5 * USD, name="dev-b")
    [newer] = run_mock_payouts(ctx, actor=MAKER, threshold_units=USD)
    review(ctx, older.id, CANCEL)
    assert [p.id for p in list_payouts(ctx)] == [newer.id, older.id]
    assert [p.id for p in list_payouts(ctx, status=PayoutStatus.CANCELLED)] == [older.id]
    assert [p.id for p in list_payouts(ctx, limit=1)] == [newer.id]
