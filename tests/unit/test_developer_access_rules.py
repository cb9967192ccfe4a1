"""Developer access and statements, on the in-memory unit of work: no database.

The same service code as in production (``developer_tokens``, ``developer_access``,
``statements``) runs against fake repositories; the SQL behaviour of the same rules is
covered on SQLite and PostgreSQL in ``tests/integration/test_statements.py`` and
``tests/e2e/test_developer_http.py``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelfaucet.config import Settings
from modelfaucet.domain.earnings import EarningsGrouping
from modelfaucet.domain.ledger import OwnerScope, Posting, Reason, SystemAccount, Transaction
from modelfaucet.domain.outcomes import InvalidRequest, InvalidSession, NotFound
from modelfaucet.domain.payouts import PayoutStatus
from modelfaucet.domain.windows import Window, month_start, reading_window
from modelfaucet.services import developer_access, developer_tokens, statements
from modelfaucet.services.catalog import create_app, create_developer
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.repositories import DeveloperPayout, PayoutStatusChange
from tests.fakes.developers import UsageRow
from tests.fakes.memory import MemoryStore

OPERATOR = Actor("alice", request_id="req_test")
USD = 100_000_000
T0 = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def ctx(store: MemoryStore, clock: Clock) -> ServiceContext:
    return ServiceContext(db=None, settings=Settings(database_url="sqlite://"), clock=clock, units=store)  # type: ignore[arg-type]


def post_at(store: MemoryStore, clock: Clock, at: datetime, wallet: str, units: int, *, reason: str = "test") -> None:
    """Post ``units`` (signed) to ``wallet`` against a system account, created at ``at``."""
    saved, clock.now = clock.now, at
    with store() as uow:
        other = uow.ledger.ensure(OwnerScope.SYSTEM, SystemAccount.ADJUSTMENT_CONTRA)
        uow.ledger.post(
            Transaction.of(
                reason, [Posting(wallet, units, reason), Posting(other, -units, reason)], reference_type="test"
            )
        )
        uow.commit()
    clock.now = saved


# --- the reading window -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "now", "expected"),
    [
        (None, None, T0, Window(datetime(2030, 3, 1, tzinfo=UTC), T0)),
        (
            None,
            datetime(2030, 4, 1, tzinfo=UTC),
            T0,
            Window(datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 4, 1, tzinfo=UTC)),
        ),
        (datetime(2030, 1, 5, tzinfo=UTC), None, T0, Window(datetime(2030, 1, 5, tzinfo=UTC), T0)),
        (T0, T0, T0, Window(T0, T0)),
    ],
)
def test_a_window_defaults_to_the_month_it_ends_in(
    start: datetime | None, end: datetime | None, now: datetime, expected: Window
) -> None:
    assert reading_window(start, end, now=now) == expected


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        reading_window(T0, T0 - timedelta(microseconds=1), now=T0)


def test_month_start_reads_the_month_in_utc() -> None:
    east = datetime(2030, 4, 1, 1, 0, tzinfo=UTC).astimezone(ZoneInfo("Asia/Tokyo"))
    assert month_start(east) == datetime(2030, 4, 1, tzinfo=UTC)


# --- statements ---------------------------------------------------------------------------


def statement(
    ctx: ServiceContext, wallet: str, start: datetime, end: datetime
) -> tuple[int, list[int], list[int], int]:
    of = statements.statement_of(ctx, wallet, start=start, end=end)
    with statements.open_statement(ctx, of) as read:
        entries = list(read.entries)
        return (
            read.summary.opening_units,
            [e.amount_units for e in entries],
            [e.balance_after_units for e in entries],
            read.summary.closing_units,
        )


@pytest.mark.parametrize(
    ("window_hours", "opening", "amounts", "closing"),
    [
        ((0, 3), 0, [5, -2, 7], 10),  # a posting exactly at `from` is in the window
        ((1, 2), 5, [-2], 3),
        ((1, 3), 5, [-2, 7], 10),  # one exactly at `to` is not
        ((3, 4), 10, [1], 11),
        ((4, 9), 11, [], 11),
        ((2, 2), 3, [], 3),
    ],
)
def test_a_statement_opens_at_the_balance_before_from_and_closes_at_the_balance_before_to(  # noqa: PLR0917
    store: MemoryStore,
    ctx: ServiceContext,
    clock: Clock,
    window_hours: tuple[int, int],
    opening: int,
    amounts: list[int],
    closing: int,
) -> None:
    wallet = store.open_account(OwnerScope.PLATFORM, "platform")
    for hour, units in [(0, 5), (1, -2), (2, 7), (3, 1)]:
        post_at(store, clock, T0 + timedelta(hours=hour), wallet, units)
    start, end = (T0 + timedelta(hours=h) for h in window_hours)
    assert statement(ctx, wallet, start, end) == (
        opening,
        amounts,
        [opening + sum(amounts[: i + 1]) for i in range(len(amounts))],
        closing,
    )
    assert statements.balance_as_of(ctx, wallet, as_of=end).balance_units == closing


def test_entries_follow_the_moment_they_were_created_not_the_order_they_were_written(
    store: MemoryStore, ctx: ServiceContext, clock: Clock
) -> None:
    wallet = store.open_account(OwnerScope.PLATFORM, "platform")
    post_at(store, clock, T0 + timedelta(hours=2), wallet, 30)
    post_at(store, clock, T0 + timedelta(hours=1), wallet, 20)
    assert statement(ctx, wallet, T0, T0 + timedelta(hours=3)) == (0, [20, 30], [20, 50], 50)


def test_the_as_of_balance_excludes_a_posting_made_at_that_very_instant(
    store: MemoryStore, ctx: ServiceContext, clock: Clock
) -> None:
    wallet = store.open_account(OwnerScope.PLATFORM, "platform")
    post_at(store, clock, T0, wallet, 9)
    assert statements.balance_as_of(ctx, wallet, as_of=T0).balance_units == 0
    assert statements.balance_as_of(ctx, wallet, as_of=T0 + timedelta(microseconds=1)).balance_units == 9


def test_a_statement_of_an_unknown_wallet_is_not_found(ctx: ServiceContext) -> None:
    with pytest.raises(NotFound, match=r"Wallet was not found\."):
        statements.statement_of(ctx, "00000000-0000-4000-8000-000000000000")


def test_each_entry_names_what_its_transaction_refers_to(store: MemoryStore, ctx: ServiceContext, clock: Clock) -> None:
    wallet = store.open_account(OwnerScope.PLATFORM, "platform")
    post_at(store, clock, T0, wallet, 4)
    of = statements.statement_of(ctx, wallet, start=T0, end=T0 + timedelta(hours=1))
    with statements.open_statement(ctx, of) as read:
        (entry,) = read.entries
    assert entry.reference == "test"
    assert entry.reason == "test"


@settings(max_examples=60, deadline=None)
@given(
    postings=st.lists(
        st.tuples(st.integers(0, 48), st.integers(-5 * USD, 5 * USD).filter(bool)), min_size=0, max_size=25
    ),
    bounds=st.tuples(st.integers(-2, 50), st.integers(-2, 50)).map(sorted),
)
def test_opening_plus_the_entries_is_the_closing_which_is_the_balance_as_of_to(
    postings: list[tuple[int, int]], bounds: list[int]
) -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    ctx = ServiceContext(db=None, settings=Settings(database_url="sqlite://"), clock=clock, units=store)  # type: ignore[arg-type]
    wallet = store.open_account(OwnerScope.PLATFORM, "platform")
    for hour, units in postings:
        post_at(store, clock, T0 + timedelta(hours=hour), wallet, units)
    start, end = (T0 + timedelta(hours=h) for h in bounds)
    opening, amounts, after, closing = statement(ctx, wallet, start, end)
    assert opening + sum(amounts) == closing
    assert after == [opening + sum(amounts[: i + 1]) for i in range(len(amounts))]
    assert closing == statements.balance_as_of(ctx, wallet, as_of=end).balance_units
    assert closing == sum(units for hour, units in postings if T0 + timedelta(hours=hour) < end)


# --- a developer's balance ------------------------------------------------------------------


def developer(ctx: ServiceContext, email: str = "dev@example.com") -> str:
    return create_developer(ctx, OPERATOR, name="Dev", email=email).developer.id


def payout(store: MemoryStore, developer_id: str, units: int, status: PayoutStatus, payout_id: str) -> None:
    with store() as uow:
        uow.developers.state.payouts[payout_id] = DeveloperPayout(  # type: ignore[attr-defined]
            payout_id, developer_id, units, status, "mock", None, uow.now, uow.now
        )
        uow.commit()


def test_earned_counts_usage_credits_and_paid_out_counts_payouts_nothing_else(
    store: MemoryStore, ctx: ServiceContext, clock: Clock
) -> None:
    dev = developer(ctx)
    with store() as uow:
        wallet = uow.ledger.require(uow.ledger.id_for(OwnerScope.DEVELOPER, dev) or "").account_id
    post_at(store, clock, T0, wallet, 7 * USD, reason=Reason.USAGE_CHANNEL_REVENUE)
    post_at(store, clock, T0, wallet, 2 * USD, reason=Reason.USAGE_PROVIDER_COST)  # a developer_key call
    post_at(store, clock, T0, wallet, 1 * USD, reason=Reason.WALLET_ADJUSTMENT)
    post_at(store, clock, T0, wallet, -3 * USD, reason=Reason.MOCK_PAYOUT_PAID)
    with store() as uow:
        uow.ledger.change_reserved(wallet, 4 * USD)
        uow.commit()
    payout(store, dev, 4 * USD, PayoutStatus.PENDING, "p-open")
    payout(store, dev, 3 * USD, PayoutStatus.PAID, "p-paid")
    payout(store, dev, 9 * USD, PayoutStatus.CANCELLED, "p-cancelled")

    found = developer_access.developer_balance(ctx, dev)

    assert (found.balance_units, found.reserved_units, found.available_units) == (7 * USD, 4 * USD, 3 * USD)
    assert (found.earned_units, found.paid_out_units, found.pending_payout_units) == (9 * USD, 3 * USD, 4 * USD)


# --- tokens -------------------------------------------------------------------------------------


def test_a_token_is_shown_once_and_kept_only_as_its_sha256(store: MemoryStore, ctx: ServiceContext) -> None:
    dev = developer(ctx)
    issued = developer_tokens.issue_developer_token(ctx, OPERATOR, developer_id=dev, name="ci-export")
    assert issued.token.startswith("mf_dev_")
    assert list(store.state.developer_access.tokens) == [hashlib.sha256(issued.token.encode()).hexdigest()]
    assert issued.token not in repr(store.state) and issued.token not in repr(issued)
    assert developer_tokens.authenticate_developer(ctx, issued.token).developer_id == dev
    (entry,) = [e for _, e in store.state.audit if e.resource_type == "developer_token"]
    assert (entry.actor, entry.action, entry.resource_id) == ("alice", "developer_token.create", issued.record.id)


@pytest.mark.parametrize(
    "presented",
    [None, "", "mf_dev_", "mf_dev_short", "mf_sess_" + "a" * 43, "Bearer mf_dev_" + "a" * 43, "mf_dev_" + "a" * 43],
)
def test_anything_but_a_live_token_is_the_same_refusal(ctx: ServiceContext, presented: str | None) -> None:
    developer_tokens.issue_developer_token(ctx, OPERATOR, developer_id=developer(ctx), name="ci")
    with pytest.raises(InvalidSession, match=r"A valid developer token is required\."):
        developer_tokens.authenticate_developer(ctx, presented)


def test_a_revoked_token_opens_nothing_and_revoking_again_changes_nothing(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    dev = developer(ctx)
    issued = developer_tokens.issue_developer_token(ctx, OPERATOR, developer_id=dev, name="ci")
    revoked = developer_tokens.revoke_developer_token(ctx, OPERATOR, developer_id=dev, token_id=issued.record.id)
    assert revoked.revoked_at is not None
    with pytest.raises(InvalidSession):
        developer_tokens.authenticate_developer(ctx, issued.token)
    audits = len(store.state.audit)
    developer_tokens.revoke_developer_token(ctx, OPERATOR, developer_id=dev, token_id=issued.record.id)
    assert len(store.state.audit) == audits


def test_another_developers_token_id_is_not_found_like_an_unknown_one(ctx: ServiceContext) -> None:
    alice, bob = developer(ctx, "alice@example.com"), developer(ctx, "bob@example.com")
    token_id = developer_tokens.issue_developer_token(ctx, OPERATOR, developer_id=alice, name="ci").record.id
    with pytest.raises(NotFound) as other:
        developer_tokens.revoke_developer_token(ctx, OPERATOR, developer_id=bob, token_id=token_id)
    with pytest.raises(NotFound) as unknown:
        developer_tokens.revoke_developer_token(ctx, OPERATOR, developer_id=bob, token_id="no-such-token")
    assert other.value.message == unknown.value.message


def test_last_used_at_is_written_at_most_once_a_minute(store: MemoryStore, ctx: ServiceContext, clock: Clock) -> None:
    issued = developer_tokens.issue_developer_token(ctx, OPERATOR, developer_id=developer(ctx), name="ci")
    commits = store.commits
    for seconds in (0, 10, 59):
        clock.now = T0 + timedelta(seconds=seconds)
        developer_tokens.authenticate_developer(ctx, issued.token)
    assert store.commits == commits + 1
    clock.now = T0 + timedelta(seconds=61)
    developer_tokens.authenticate_developer(ctx, issued.token)
    assert store.commits == commits + 2
    (stored,) = store.state.developer_access.tokens.values()
    assert stored.last_used_at == T0 + timedelta(seconds=61)


# --- payouts and earnings, scoped to the developer ----------------------------------------------


def test_another_developers_payout_is_not_found_exactly_like_an_unknown_one(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    alice, bob = developer(ctx, "alice@example.com"), developer(ctx, "bob@example.com")
    payout(store, alice, USD, PayoutStatus.PENDING, "p-alice")
    assert [p.id for p in developer_access.developer_payouts(ctx, alice)] == ["p-alice"]
    assert developer_access.developer_payouts(ctx, bob) == []
    with pytest.raises(NotFound) as other:
        developer_access.developer_payout(ctx, bob, "p-alice")
    with pytest.raises(NotFound) as unknown:
        developer_access.developer_payout(ctx, bob, "p-none")
    assert other.value.message == unknown.value.message == "Payout was not found."
    assert (other.value.details, unknown.value.details) == ({"payout_id": "p-alice"}, {"payout_id": "p-none"})


def test_a_payouts_history_is_its_status_changes(store: MemoryStore, ctx: ServiceContext) -> None:
    dev = developer(ctx)
    payout(store, dev, USD, PayoutStatus.PROCESSING, "p-1")
    changes = [
        PayoutStatusChange(T0, None, PayoutStatus.PENDING),
        PayoutStatusChange(T0, PayoutStatus.PENDING, PayoutStatus.PROCESSING),
    ]
    store.state.developer_access.payout_history["p-1"] = changes
    assert developer_access.developer_payout(ctx, dev, "p-1").history == tuple(changes)


def usage(app_id: str, public_app_id: str, at: datetime, channel: int, *, model: str = "m") -> UsageRow:
    return UsageRow(app_id, public_app_id, "reply", "mock", model, 100, 10, 3 * channel, channel, at)


def test_earnings_group_the_developers_own_apps_and_add_up_to_their_totals(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    alice, bob = developer(ctx, "alice@example.com"), developer(ctx, "bob@example.com")
    a1 = create_app(ctx, OPERATOR, developer_id=alice, public_app_id="a1", name="A1", default_revenue_share_bps=5000)
    a2 = create_app(ctx, OPERATOR, developer_id=alice, public_app_id="a2", name="A2", default_revenue_share_bps=5000)
    b1 = create_app(ctx, OPERATOR, developer_id=bob, public_app_id="b1", name="B1", default_revenue_share_bps=5000)
    store.state.developer_access.usage.extend(
        [
            usage(a1.app.id, "a1", T0, 10),
            usage(a1.app.id, "a1", T0 + timedelta(days=1), 20, model="n"),
            usage(a2.app.id, "a2", T0, 40),
            usage(b1.app.id, "b1", T0, 1000),
            usage(a1.app.id, "a1", datetime(2030, 2, 28, tzinfo=UTC), 5000),  # last month
        ]
    )
    window = {"start": datetime(2030, 3, 1, tzinfo=UTC), "end": datetime(2030, 4, 1, tzinfo=UTC)}
    by_app = developer_access.developer_earnings(ctx, alice, grouping=EarningsGrouping.APP, **window)
    assert [(line.key, line.requests, line.channel_revenue_units) for line in by_app.items] == [
        ("a1", 2, 30),
        ("a2", 1, 40),
    ]
    assert (by_app.totals.requests, by_app.totals.channel_revenue_units, by_app.totals.retail_units) == (3, 70, 210)
    by_day = developer_access.developer_earnings(ctx, alice, grouping=EarningsGrouping.DAY, **window)
    assert [line.key for line in by_day.items] == ["2030-03-10", "2030-03-11"]
    assert by_day.totals == by_app.totals
    only_a1 = developer_access.developer_earnings(
        ctx, alice, grouping=EarningsGrouping.MODEL, public_app_id="a1", **window
    )
    assert [(line.key, line.channel_revenue_units) for line in only_a1.items] == [("mock/m", 10), ("mock/n", 20)]


def test_earnings_of_another_developers_app_are_not_found_like_an_unknown_app(ctx: ServiceContext) -> None:
    alice, bob = developer(ctx, "alice@example.com"), developer(ctx, "bob@example.com")
    create_app(ctx, OPERATOR, developer_id=bob, public_app_id="b1", name="B1", default_revenue_share_bps=5000)
    with pytest.raises(NotFound) as other:
        developer_access.developer_earnings(ctx, alice, public_app_id="b1")
    with pytest.raises(NotFound) as unknown:
        developer_access.developer_earnings(ctx, alice, public_app_id="zz")
    assert other.value.message == unknown.value.message == "App was not found."
