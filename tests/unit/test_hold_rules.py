"""The hold rules (SPEC §18): the pure state machine and shortfall split, then the services
on the in-memory unit of work (no database). The same rules run on SQLite and PostgreSQL in
``tests/e2e/test_holds_http.py`` and the model-based ledger test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelfaucet.config import Settings
from modelfaucet.domain.holds import HoldStatus, can_move, split_capture, with_shortfall
from modelfaucet.domain.ledger import OwnerScope, Posting, Reason, SystemAccount, Transaction
from modelfaucet.domain.outcomes import IdempotencyConflict, InsufficientBalance, InvalidState, NotFound
from modelfaucet.domain.rating import FeaturePricing, ModelPrice
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.holds import PlaceHold, expire_due_holds, place_holds, void_hold
from modelfaucet.services.record_usage import UsageStatus, record_usage
from tests.fakes.memory import MemoryStore
from tests.unit.test_usage_rules import APP, RETAIL, event, fund

HELD, CAPTURED, RELEASED, EXPIRED = HoldStatus.HELD, HoldStatus.CAPTURED, HoldStatus.RELEASED, HoldStatus.EXPIRED
START = datetime(2030, 1, 1, tzinfo=UTC)

# --- the pure rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (HELD, CAPTURED, True),
        (HELD, RELEASED, True),
        (HELD, EXPIRED, True),
        (HELD, HELD, False),
        (CAPTURED, RELEASED, False),
        (RELEASED, CAPTURED, False),
        (EXPIRED, CAPTURED, False),
        (EXPIRED, RELEASED, False),
    ],
)
def test_a_hold_ends_once_and_only_from_held(current: HoldStatus, target: HoldStatus, allowed: bool) -> None:
    assert can_move(current, target) is allowed


@pytest.mark.parametrize(
    ("price", "available", "collected", "uncollected"),
    [
        (100, 500, 100, 0),  # the hold (released into available) covers it
        (500, 500, 500, 0),  # exactly
        (700, 500, 500, 200),  # ran long: the wallet pays all it has
        (700, 0, 0, 700),  # nothing left at all
        (0, 500, 0, 0),  # a free call
    ],
)
def test_the_wallet_pays_what_it_has_and_the_rest_is_uncollected(
    price: int, available: int, collected: int, uncollected: int
) -> None:
    split = split_capture(price, available)
    assert (split.collected_units, split.uncollected_units) == (collected, uncollected)
    assert split.collected_units + split.uncollected_units == price


def test_a_shortfall_moves_only_the_end_user_debit_and_still_balances() -> None:
    usage = Transaction.of(
        Reason.USAGE_RETAIL_PRICE.value,
        [
            Posting("wallet", -130, Reason.USAGE_RETAIL_PRICE.value),
            Posting("provider", 100, Reason.USAGE_PROVIDER_COST.value),
            Posting("developer", 12, Reason.USAGE_CHANNEL_REVENUE.value),
            Posting("platform", 18, Reason.USAGE_PLATFORM_REVENUE.value),
        ],
    )
    cut = with_shortfall(usage, wallet_id="wallet", uncollected_account_id="uncollected", uncollected_units=30)
    assert cut.net_by_account() == {
        "developer": 12,
        "platform": 18,
        "provider": 100,
        "uncollected": -30,
        "wallet": -100,
    }
    assert [p.reason for p in cut.postings if p.account_id == "uncollected"] == [Reason.USAGE_UNCOLLECTED.value]
    nothing_collected = with_shortfall(usage, wallet_id="wallet", uncollected_account_id="u", uncollected_units=130)
    assert "wallet" not in nothing_collected.net_by_account()
    assert with_shortfall(usage, wallet_id="wallet", uncollected_account_id="u", uncollected_units=0) is usage


# --- the services, in memory ----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    """The demo app with one feature and the mock-small price (as in ``test_usage_rules``)."""
    store = MemoryStore(clock=clock)
    catalogue = store.state.usage
    catalogue.apps[APP.public_app_id] = APP
    catalogue.features[(APP.id, "customer_reply")] = FeaturePricing(pricing_version=1)
    catalogue.prices[("mock", "mock-small")] = ModelPrice(50_000_000, 150_000_000, 5_000_000, version=3)
    return store


@pytest.fixture
def ctx(store: MemoryStore, clock: Clock) -> ServiceContext:
    return ServiceContext(db=None, settings=Settings(database_url="sqlite://"), clock=clock, units=store)  # type: ignore[arg-type]


def hold(request_id: str, amount: int, *, ttl: int = 300, user: str = "alice") -> PlaceHold:
    return PlaceHold(request_id, APP.public_app_id, user, "customer_reply", amount, ttl)


def reserved(store: MemoryStore, wallet: str) -> int:
    return store.state.accounts[wallet].reserved_units


def uncollected(store: MemoryStore) -> int:
    found = [
        a.balance_units
        for a in store.state.accounts.values()
        if (a.owner_scope, a.owner_id) == (OwnerScope.SYSTEM, SystemAccount.UNCOLLECTED_USAGE.value)
    ]
    return found[0] if found else 0


def test_a_hold_reserves_its_amount_and_a_repeat_reserves_nothing_more(ctx: ServiceContext, store: MemoryStore) -> None:
    wallet = fund(store, "alice", 1000)
    [placed] = place_holds(ctx, [hold("h1", 600)])
    assert placed.created and placed.available_units == 400
    assert placed.hold is not None and placed.hold.expires_at == START + timedelta(seconds=300)
    [again] = place_holds(ctx, [hold("h1", 600)])
    assert not again.created and again.hold == placed.hold
    [conflict] = place_holds(ctx, [hold("h1", 500)])
    assert isinstance(conflict.error, IdempotencyConflict)
    [too_much] = place_holds(ctx, [hold("h2", 401)])
    assert isinstance(too_much.error, InsufficientBalance)
    assert reserved(store, wallet) == 600


def test_holds_of_one_batch_are_reserved_in_order_against_the_running_available(
    ctx: ServiceContext, store: MemoryStore
) -> None:
    wallet = fund(store, "alice", 1000)
    outcomes = place_holds(ctx, [hold("a", 600), hold("b", 500), hold("c", 400), hold("a", 600)])
    assert [o.error.__class__.__name__ if o.error else o.created for o in outcomes] == [
        True,
        "InsufficientBalance",
        True,
        False,
    ]
    assert reserved(store, wallet) == 1000


@pytest.mark.parametrize(
    ("opening", "held", "balance_after", "uncollected_after"),
    [
        (10 * RETAIL, 2 * RETAIL, 9 * RETAIL, 0),  # the hold covers the price
        (10 * RETAIL, RETAIL // 2, 9 * RETAIL, 0),  # a small hold: the rest of the wallet pays
        (RETAIL // 2, RETAIL // 2, 0, RETAIL - RETAIL // 2),  # the wallet runs out: a shortfall
    ],
    ids=["covered by the hold", "covered by the wallet", "shortfall"],
)
def test_the_event_captures_its_hold_and_never_overdraws(
    *, ctx: ServiceContext, store: MemoryStore, opening: int, held: int, balance_after: int, uncollected_after: int
) -> None:
    wallet = fund(store, "alice", opening)
    place_holds(ctx, [hold("call", held)])
    outcome = record_usage(ctx, event("call"))
    assert outcome.status is UsageStatus.RECORDED
    account = store.state.accounts[wallet]
    assert (account.balance_units, account.reserved_units) == (balance_after, 0)
    assert uncollected(store) == -uncollected_after
    assert sum(a.balance_units for a in store.state.accounts.values()) == 0


def test_without_a_hold_an_unaffordable_event_is_still_refused(ctx: ServiceContext, store: MemoryStore) -> None:
    fund(store, "alice", RETAIL // 2)
    assert record_usage(ctx, event("call")).status is UsageStatus.REJECTED


def test_a_second_capture_of_one_hold_is_a_duplicate_and_a_foreign_hold_is_not_found(
    ctx: ServiceContext, store: MemoryStore
) -> None:
    fund(store, "alice", 10 * RETAIL)
    fund(store, "bob", 10 * RETAIL)
    [placed] = place_holds(ctx, [hold("call", RETAIL)])
    assert placed.hold is not None
    first = record_usage(ctx, event("e1", hold_id=placed.hold.id))
    second = record_usage(ctx, event("e2", hold_id=placed.hold.id))
    assert (first.status, second.status) == (UsageStatus.RECORDED, UsageStatus.DUPLICATE)
    assert second.receipt == first.receipt
    foreign = record_usage(ctx, event("e3", hold_id=placed.hold.id, external_user_id="bob"))
    assert isinstance(foreign.error, NotFound)


def test_an_expired_hold_is_released_by_the_next_write_and_the_event_posts_without_it(
    ctx: ServiceContext, store: MemoryStore, clock: Clock
) -> None:
    wallet = fund(store, "alice", 1000)
    place_holds(ctx, [hold("old", 900, ttl=60)])
    clock.now += timedelta(seconds=60)
    [fresh] = place_holds(ctx, [hold("new", 800)])
    assert fresh.created and reserved(store, wallet) == 800
    assert [h.status for h in store.state.holds.holds.values()] == [EXPIRED, HELD]


def test_the_sweep_expires_only_overdue_holds(ctx: ServiceContext, store: MemoryStore, clock: Clock) -> None:
    wallet = fund(store, "alice", 1000)
    place_holds(ctx, [hold("short", 100, ttl=10), hold("long", 200, ttl=100)])
    clock.now += timedelta(seconds=10)
    assert expire_due_holds(ctx) == 100
    assert expire_due_holds(ctx) == 0
    assert reserved(store, wallet) == 200


def test_void_releases_a_held_hold_once_and_refuses_a_captured_one(ctx: ServiceContext, store: MemoryStore) -> None:
    wallet = fund(store, "alice", 10 * RETAIL)
    [a, b] = place_holds(ctx, [hold("a", RETAIL), hold("b", RETAIL)])
    assert a.hold is not None and b.hold is not None
    assert void_hold(ctx, a.hold.id).status is RELEASED
    assert void_hold(ctx, a.hold.id).status is RELEASED  # again: unchanged
    record_usage(ctx, event("b"))
    with pytest.raises(InvalidState):
        void_hold(ctx, b.hold.id)
    with pytest.raises(NotFound):
        void_hold(ctx, "no-such-hold")
    assert reserved(store, wallet) == 0


@pytest.mark.parametrize("second", ["released", "expired"])
def test_a_repeat_or_refused_void_keeps_the_wallets_lazy_expiry(
    ctx: ServiceContext, store: MemoryStore, clock: Clock, second: str
) -> None:
    """Voiding locks the wallet, so its overdue holds end first (SPEC §18) — also when the
    void itself answers a released hold unchanged or refuses an expired one."""
    wallet = fund(store, "alice", 1000)
    [short] = place_holds(ctx, [hold("short", 100, ttl=60)])
    [other] = place_holds(ctx, [hold("other", 200, ttl=600 if second == "released" else 60)])
    assert short.hold is not None and other.hold is not None
    if second == "released":
        void_hold(ctx, other.hold.id)
    clock.now += timedelta(seconds=120)
    if second == "released":
        assert void_hold(ctx, other.hold.id).status is HoldStatus.RELEASED
    else:
        with pytest.raises(InvalidState):
            void_hold(ctx, other.hold.id)
    assert reserved(store, wallet) == 0
    assert store.state.holds.holds[short.hold.id].status is HoldStatus.EXPIRED
