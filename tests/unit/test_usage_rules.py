"""The usage rules, on the in-memory unit of work: no database, well under a second.

The same service code as in production (``record_usage_batch``) runs against fake
repositories; the SQL behaviour of the same rules is covered on SQLite and PostgreSQL in
``tests/integration/test_usage_posting.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from modelfaucet.config import Settings
from modelfaucet.domain.catalog import FEATURE_NOT_FOUND
from modelfaucet.domain.identity import external_user_hash
from modelfaucet.domain.ledger import AccountState, OwnerScope
from modelfaucet.domain.outcomes import (
    Forbidden,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidRequest,
    NotFound,
)
from modelfaucet.domain.rating import DefaultPricing, FeaturePricing, ModelPrice, RouteMode
from modelfaucet.services import record_usage as record_usage_module
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.record_usage import (
    MAX_ATTEMPTS,
    UsageEvent,
    UsageOutcome,
    UsageStatus,
    record_usage,
    record_usage_batch,
)
from modelfaucet.services.repositories import BillableApp, NewUsage
from modelfaucet.services.unit_of_work import ConcurrentWrite
from modelfaucet.services.usage_decisions import Catalogue, decide, fingerprint, rate_events, triage
from tests.fakes.memory import MemoryStore
from tests.fakes.usage import MemoryUsage

APP = BillableApp("app-1", "app_pub_demo", "dev-1", True, DefaultPricing(markup_bps=3000, channel_share_bps=4000))
SUSPENDED = BillableApp("app-2", "app_pub_off", "dev-1", False, DefaultPricing(3000, 4000))
FEE = 10_000  # the "flat" feature's explicit gateway fee: 0.0001 USD, less than RETAIL
# 1200 input × 0.50/M + 300 output × 1.50/M = 0.00105; markup 30 %, share 40 %.
RETAIL, UPSTREAM, CHANNEL, PLATFORM = 136_500, 105_000, 12_600, 18_900

RECORDED, DUPLICATE, REJECTED = UsageStatus.RECORDED, UsageStatus.DUPLICATE, UsageStatus.REJECTED


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore(clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    catalogue = store.state.usage
    for app in (APP, SUSPENDED):
        catalogue.apps[app.public_app_id] = app
        catalogue.features[(app.id, "customer_reply")] = FeaturePricing(pricing_version=1)
    catalogue.features[(APP.id, "flat")] = FeaturePricing(2, markup_bps=90_000, explicit_gateway_fee_units=FEE)
    catalogue.prices[("mock", "mock-small")] = ModelPrice(50_000_000, 150_000_000, 5_000_000, version=3)
    return store


@pytest.fixture
def ctx(store: MemoryStore) -> ServiceContext:
    return ServiceContext(db=None, settings=Settings(database_url="sqlite://"), units=store)  # type: ignore[arg-type]


def event(request_id: str, **changes: Any) -> UsageEvent:
    values: dict[str, Any] = {
        "request_id": request_id,
        "public_app_id": APP.public_app_id,
        "external_user_id": "alice",
        "feature_key": "customer_reply",
        "route_mode": RouteMode.PLATFORM,
        "provider": "mock",
        "model": "mock-small",
        "input_tokens": 1200,
        "output_tokens": 300,
    }
    values.update(changes)
    return UsageEvent(**values)


def fee(request_id: str, **changes: Any) -> UsageEvent:
    """A local call of the "flat" feature: it costs exactly FEE."""
    return event(request_id, feature_key="flat", route_mode=RouteMode.LOCAL, **changes)


def fund(store: MemoryStore, user: str, units: int, *, reserved: int = 0) -> str:
    """Give the demo app's end user ``user`` a wallet with ``units``; return the wallet id."""
    end_user_id = store.state.usage.end_users.setdefault((APP.id, external_user_hash(APP.id, user)), f"eu-{user}")
    wallet = store.open_account(OwnerScope.END_USER, end_user_id, units)
    if reserved:
        with store() as uow:
            uow.ledger.change_reserved(wallet, reserved)
            uow.commit()
    return wallet


def statuses(outcomes: list[UsageOutcome]) -> list[UsageStatus]:
    return [outcome.status for outcome in outcomes]


def assert_books_balance(store: MemoryStore) -> None:
    assert sum(account.balance_units for account in store.state.accounts.values()) == 0


# --- affordability ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opening", "reserved", "calls", "expected"),
    [
        (2 * RETAIL, 0, ["priced", "priced", "priced"], [RECORDED, RECORDED, REJECTED]),
        (2 * RETAIL - 1, 0, ["priced", "priced"], [RECORDED, REJECTED]),
        (RETAIL + FEE, 0, ["priced", "priced", "fee"], [RECORDED, REJECTED, RECORDED]),
        (2 * RETAIL, RETAIL, ["priced", "priced"], [RECORDED, REJECTED]),
        (0, 0, ["priced", "fee"], [REJECTED, REJECTED]),
    ],
    ids=["the third no longer fits", "the second misses by one unit", "a cheaper call still fits", "reserved", "empty"],
)
def test_events_of_one_user_in_one_batch_are_paid_in_order_from_the_running_balance(  # noqa: PLR0917
    store: MemoryStore,
    ctx: ServiceContext,
    opening: int,
    reserved: int,
    calls: list[str],
    expected: list[UsageStatus],
) -> None:
    wallet = fund(store, "alice", opening, reserved=reserved)
    price = {"priced": RETAIL, "fee": FEE}
    events = [event(f"r{n}") if call == "priced" else fee(f"r{n}") for n, call in enumerate(calls)]
    outcomes = record_usage_batch(ctx, events)
    assert statuses(outcomes) == expected
    spent = sum(price[call] for call, status in zip(calls, expected, strict=True) if status is RECORDED)
    assert store.balance_of(wallet) == opening - spent
    balances_after = [o.receipt.end_user_balance_units for o in outcomes if o.receipt is not None]
    assert balances_after[-1:] == ([opening - spent] if spent else [])
    for outcome in outcomes:
        if outcome.status is REJECTED:
            assert isinstance(outcome.error, InsufficientBalance)
            assert outcome.error.details["wallet_id"] == wallet
    assert len(store.state.usage.events) == expected.count(RECORDED)
    assert_books_balance(store)


def test_decide_checks_against_running_balances_and_leaves_the_locked_states_alone(store: MemoryStore) -> None:
    fund(store, "alice", 2 * RETAIL)
    events = [event("a"), event("b"), event("c")]
    [fresh_a, fresh_b, fresh_c] = triage(events, [fingerprint(e) for e in events], {}).fresh
    catalogue = Catalogue(
        {APP.public_app_id: APP},
        store.state.usage.features,
        store.state.usage.prices,
        {(APP.id, "alice"): "eu-alice"},
    )
    rated, refused = rate_events([fresh_a, fresh_b, fresh_c], catalogue)
    assert refused == {}
    wallet = AccountState("w-alice", OwnerScope.END_USER, 2 * RETAIL, 0, "eu-alice")
    accepted, refused = decide(rated, {"eu-alice": wallet})
    assert [(a.rated.index, a.balance_after_units) for a in accepted] == [(0, RETAIL), (1, 0)]
    assert list(refused) == [2]
    assert wallet.balance_units == 2 * RETAIL


# --- end users without a wallet ---------------------------------------------------------


def test_a_free_call_of_an_unknown_user_creates_the_user_and_an_empty_wallet(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    outcome = record_usage(ctx, event("free", external_user_id="newcomer", route_mode=RouteMode.BYOK))
    assert outcome.status is RECORDED
    assert outcome.receipt is not None
    assert (outcome.receipt.retail_price_units, outcome.receipt.transaction_id) == (0, None)
    assert outcome.receipt.end_user_balance_units == 0
    end_user_id = store.state.usage.end_users[(APP.id, external_user_hash(APP.id, "newcomer"))]
    wallet = store.state.accounts[outcome.receipt.end_user_wallet_id or ""]
    assert (wallet.owner_scope, wallet.owner_id, wallet.balance_units) == (OwnerScope.END_USER, end_user_id, 0)
    assert store.state.usage.events["free"].end_user_id == end_user_id
    assert store.state.postings == []


def test_a_priced_call_of_an_unknown_user_is_refused_and_creates_nothing(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    outcome = record_usage(ctx, event("priced", external_user_id="newcomer"))
    assert outcome.status is REJECTED
    assert isinstance(outcome.error, InsufficientBalance)
    assert outcome.error.details == {"available_usd": "0.00000000", "requested_usd": "0.00136500"}
    assert store.state.usage.end_users == {}
    assert store.state.accounts == {}


# --- rating -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route_mode", "feature", "upstream", "retail", "channel"),
    [
        (RouteMode.PLATFORM, "customer_reply", UPSTREAM, RETAIL, CHANNEL),
        (RouteMode.DEVELOPER_KEY, "customer_reply", UPSTREAM, RETAIL, CHANNEL),
        (RouteMode.BYOK, "customer_reply", 0, 0, 0),
        (RouteMode.LOCAL, "customer_reply", 0, 0, 0),
        # "flat" marks up 900 %: never for byok or local, which pay only the visible fee.
        (RouteMode.BYOK, "flat", 0, FEE, FEE * 4000 // 10_000),
        (RouteMode.LOCAL, "flat", 0, FEE, FEE * 4000 // 10_000),
        (RouteMode.PLATFORM, "flat", UPSTREAM, UPSTREAM * 10, (UPSTREAM * 9) * 4000 // 10_000),
    ],
)
def test_byok_and_local_never_carry_a_markup(  # noqa: PLR0917
    store: MemoryStore,
    ctx: ServiceContext,
    route_mode: RouteMode,
    feature: str,
    upstream: int,
    retail: int,
    channel: int,
) -> None:
    fund(store, "alice", 10 * UPSTREAM)
    outcome = record_usage(ctx, event("r", route_mode=route_mode, feature_key=feature, input_tokens=1200))
    receipt = outcome.receipt
    assert receipt is not None, outcome.error
    assert (receipt.upstream_cost_units, receipt.retail_price_units, receipt.channel_revenue_units) == (
        upstream,
        retail,
        channel,
    )
    assert receipt.retail_price_units == upstream + receipt.channel_revenue_units + receipt.platform_revenue_units
    assert_books_balance(store)


def test_the_snapshot_records_the_effective_pricing_and_the_versions(store: MemoryStore, ctx: ServiceContext) -> None:
    fund(store, "alice", RETAIL)
    record_usage(ctx, event("r"))
    snapshot = store.state.usage.events["r"].rating_snapshot
    assert snapshot["pricing"] == {
        "source": "feature",
        "feature_pricing_version": 1,
        "markup_bps": 3000,  # the app's defaults: the feature sets none
        "channel_share_bps": 4000,
        "explicit_gateway_fee_units": 0,
    }
    assert snapshot["model_price"]["version"] == 3
    assert snapshot["upstream_source"] == "price_table"
    assert snapshot["request"] == event("r").fingerprint()


@pytest.mark.parametrize(
    ("changes", "refusal", "message"),
    [
        ({"public_app_id": "app_nope"}, NotFound, "App was not found."),
        ({"public_app_id": SUSPENDED.public_app_id}, Forbidden, "App is not active."),
        ({"public_app_id": SUSPENDED.public_app_id, "feature_key": "nope"}, Forbidden, "App is not active."),
        ({"feature_key": "nope"}, NotFound, FEATURE_NOT_FOUND),
        ({"feature_key": "nope", "model": "no-price"}, NotFound, FEATURE_NOT_FOUND),
        ({"model": "no-price"}, InvalidRequest, None),
        ({"input_tokens": -1}, InvalidRequest, None),
    ],
    ids=[
        "unknown app",
        "inactive app",
        "inactive before feature",
        "unknown feature",
        "feature before price",
        "no price",
        "bad tokens",
    ],
)
def test_an_event_that_cannot_be_rated_is_refused_alone_in_a_fixed_order(
    store: MemoryStore, ctx: ServiceContext, changes: dict[str, Any], refusal: type[Exception], message: str | None
) -> None:
    fund(store, "alice", RETAIL)
    outcomes = record_usage_batch(ctx, [event("bad", **changes), event("good")])
    assert statuses(outcomes) == [REJECTED, RECORDED]
    assert type(outcomes[0].error) is refusal
    if message is not None:
        assert outcomes[0].error is not None and outcomes[0].error.message == message
    if refusal is NotFound and message == FEATURE_NOT_FOUND:
        assert outcomes[0].error is not None and outcomes[0].error.details == {"feature_key": "nope"}


# --- idempotency ------------------------------------------------------------------------


def test_a_request_id_repeated_in_one_batch_is_posted_once(store: MemoryStore, ctx: ServiceContext) -> None:
    wallet = fund(store, "alice", 10 * RETAIL)
    outcomes = record_usage_batch(ctx, [event("same"), event("same"), event("same", output_tokens=1)])
    assert statuses(outcomes) == [RECORDED, DUPLICATE, REJECTED]
    assert outcomes[1].receipt == outcomes[0].receipt
    assert isinstance(outcomes[2].error, IdempotencyConflict)
    assert outcomes[2].error.details == {"request_id": "same", "differing_fields": ["output_tokens"]}
    assert store.balance_of(wallet) == 9 * RETAIL
    assert len(store.state.transactions) == 2  # the opening balance and one usage event


def test_a_repeat_of_a_refused_event_is_refused_the_same_way(store: MemoryStore, ctx: ServiceContext) -> None:
    fund(store, "alice", RETAIL - 1)
    outcomes = record_usage_batch(ctx, [event("poor"), event("poor")])
    assert statuses(outcomes) == [REJECTED, REJECTED]
    assert outcomes[1].error is outcomes[0].error


def test_a_stored_request_id_answers_its_original_receipt_or_a_conflict(
    store: MemoryStore, ctx: ServiceContext
) -> None:
    wallet = fund(store, "alice", 10 * RETAIL)
    first = record_usage(ctx, event("r"))
    again = record_usage_batch(ctx, [event("r"), event("r", model="other", cached_tokens=5)])
    assert statuses(again) == [DUPLICATE, REJECTED]
    assert again[0].receipt == first.receipt
    assert isinstance(again[1].error, IdempotencyConflict)
    assert again[1].error.details["differing_fields"] == ["cached_tokens", "model"]
    assert store.balance_of(wallet) == 9 * RETAIL


def test_usage_request_hashes_stay_those_already_stored() -> None:
    # Digests computed by the first release for the same events: stored rows must keep matching.
    plain = event("req-1", external_user_id="demo-user-1")
    accented = event(
        "req-é",
        external_user_id="user-ü",
        route_mode=RouteMode.BYOK,
        model="modèle-日本",
        cached_tokens=7,
        upstream_cost_units=123456,
    )
    assert fingerprint(plain).digest == "62a21769525a535624353111a2a3e76d1281f6e6dc5c0ef820cc62ed0b7e620c"
    assert fingerprint(accented).digest == "421e10706f34d5a1f276db13297a3605c3621abee50ceb3c10d7409261c9fffd"


# --- lost races -------------------------------------------------------------------------


def test_a_request_id_stored_by_a_concurrent_batch_is_decided_again_as_a_duplicate(
    store: MemoryStore, ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    wallet = fund(store, "alice", 10 * RETAIL)
    add_many = MemoryUsage.add_many
    attempts: list[int] = []

    def another_process_commits_first(self: MemoryUsage, usages: list[NewUsage]) -> None:
        attempts.append(len(usages))
        if len(attempts) == 1:
            record_usage(ctx, event("raced"))  # another unit of work commits the same request id
            raise ConcurrentWrite()  # what the unique constraint then answers ours
        add_many(self, usages)

    monkeypatch.setattr(MemoryUsage, "add_many", another_process_commits_first)
    outcomes = record_usage_batch(ctx, [event("mine"), event("raced")])
    assert statuses(outcomes) == [RECORDED, DUPLICATE]
    assert attempts == [2, 1, 1]  # ours, the racer's, ours again with only the fresh event
    assert store.balance_of(wallet) == 8 * RETAIL
    assert_books_balance(store)


def test_a_batch_that_keeps_losing_races_gives_up_loudly_and_keeps_nothing(
    store: MemoryStore, ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    wallet = fund(store, "alice", 10 * RETAIL)
    attempts: list[int] = []

    def always_lose(self: MemoryUsage, usages: list[NewUsage]) -> None:
        attempts.append(len(usages))
        raise ConcurrentWrite()

    monkeypatch.setattr(MemoryUsage, "add_many", always_lose)
    commits = store.commits
    with pytest.raises(ConcurrentWrite):
        record_usage_batch(ctx, [event("r")])
    assert len(attempts) == MAX_ATTEMPTS == record_usage_module.MAX_ATTEMPTS
    assert store.commits == commits
    assert store.balance_of(wallet) == 10 * RETAIL
