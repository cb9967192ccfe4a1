"""The adjustment rules, on the in-memory unit of work: no database, well under a second.

The same service code as in production (``apply_adjustment``) runs against fake
repositories; the SQL behaviour of the same rules is covered on SQLite and PostgreSQL in
``tests/integration/test_adjustments.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelfaucet.config import Settings
from modelfaucet.domain.ledger import OwnerScope
from modelfaucet.domain.outcomes import IdempotencyConflict, InsufficientBalance, InvalidRequest, NotFound
from modelfaucet.services.apply_adjustment import AdjustmentKind, AdjustWallet, Direction, apply_adjustment
from modelfaucet.services.context import Actor, ServiceContext
from tests.fakes.memory import MemoryStore

OPERATOR = Actor("alice", request_id="req_test")
USD = 100_000_000


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))


@pytest.fixture
def ctx(store: MemoryStore) -> ServiceContext:
    return ServiceContext(db=None, settings=Settings(database_url="sqlite://"), units=store)  # type: ignore[arg-type]


def command(wallet_id: str, direction: Direction, units: int, *, key: str | None = None, **kw: object) -> AdjustWallet:
    kind = kw.get("kind", AdjustmentKind.ADJUSTMENT)
    return AdjustWallet(wallet_id, kind, direction, units, str(kw.get("reason", "test")), key)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("opening", "reserved", "direction", "amount", "expected_balance", "refusal"),
    [
        (10 * USD, 0, Direction.CREDIT, 5 * USD, 15 * USD, None),
        (10 * USD, 0, Direction.DEBIT, 10 * USD, 0, None),
        (10 * USD, 0, Direction.DEBIT, 10 * USD + 1, 10 * USD, InsufficientBalance),
        (10 * USD, 4 * USD, Direction.DEBIT, 6 * USD, 4 * USD, None),
        (10 * USD, 4 * USD, Direction.DEBIT, 6 * USD + 1, 10 * USD, InsufficientBalance),
        (0, 0, Direction.DEBIT, 1, 0, InsufficientBalance),
    ],
)
def test_a_debit_may_spend_only_the_available_balance(  # noqa: PLR0917
    store: MemoryStore,
    ctx: ServiceContext,
    opening: int,
    reserved: int,
    direction: Direction,
    amount: int,
    expected_balance: int,
    refusal: type[Exception] | None,
) -> None:
    wallet = store.open_account(OwnerScope.END_USER, "user-1", opening)
    if reserved:
        with store() as uow:
            uow.ledger.change_reserved(wallet, reserved)
            uow.commit()
    commits = store.commits
    if refusal is None:
        applied = apply_adjustment(ctx, command(wallet, direction, amount), actor=OPERATOR)
        assert applied.result.wallet_balance_units == expected_balance
        assert store.commits == commits + 1
    else:
        with pytest.raises(refusal):
            apply_adjustment(ctx, command(wallet, direction, amount), actor=OPERATOR)
        assert store.commits == commits, "a refused adjustment commits nothing"
    assert store.balance_of(wallet) == expected_balance
    assert sum(account.balance_units for account in store.state.accounts.values()) == 0


@pytest.mark.parametrize(
    ("kind", "contra"),
    [
        (AdjustmentKind.ADJUSTMENT, "adjustment_contra"),
        (AdjustmentKind.REFUND, "refund_contra"),
        (AdjustmentKind.CHARGEBACK, "chargeback_contra"),
    ],
)
def test_each_kind_posts_against_its_own_contra_account(
    store: MemoryStore, ctx: ServiceContext, kind: AdjustmentKind, contra: str
) -> None:
    wallet = store.open_account(OwnerScope.END_USER, "user-1", 10 * USD)
    apply_adjustment(ctx, command(wallet, Direction.DEBIT, 3 * USD, kind=kind), actor=OPERATOR)
    contra_account = next(a for a in store.state.accounts.values() if a.owner_id == contra)
    assert contra_account.balance_units == 3 * USD
    assert store.balance_of(wallet) == 7 * USD


def test_an_adjustment_writes_its_record_and_declares_one_audit_entry(store: MemoryStore, ctx: ServiceContext) -> None:
    wallet = store.open_account(OwnerScope.END_USER, "user-1", 10 * USD)
    applied = apply_adjustment(ctx, command(wallet, Direction.CREDIT, USD, reason="goodwill"), actor=OPERATOR)
    record = store.state.adjustments[applied.result.id]
    assert (record.account_id, record.amount_units, record.actor) == (wallet, USD, "alice")
    [(_, entry)] = store.state.audit
    assert (entry.action, entry.resource_id, entry.amount_units, entry.request_id) == (
        "wallet.adjustment.credit",
        applied.result.id,
        USD,
        "req_test",
    )


def test_the_same_key_and_body_replays_without_applying_again(store: MemoryStore, ctx: ServiceContext) -> None:
    wallet = store.open_account(OwnerScope.END_USER, "user-1", 10 * USD)
    first = apply_adjustment(ctx, command(wallet, Direction.CREDIT, USD, key="key-00000001"), actor=OPERATOR)
    again = apply_adjustment(ctx, command(wallet, Direction.CREDIT, USD, key="key-00000001"), actor=OPERATOR)
    assert (first.replayed, again.replayed) == (False, True)
    assert again.result == first.result
    assert store.balance_of(wallet) == 11 * USD
    assert len(store.state.adjustments) == 1


def test_the_same_key_with_another_body_is_a_conflict_naming_the_field(store: MemoryStore, ctx: ServiceContext) -> None:
    wallet = store.open_account(OwnerScope.END_USER, "user-1", 10 * USD)
    apply_adjustment(ctx, command(wallet, Direction.CREDIT, USD, key="key-00000001"), actor=OPERATOR)
    with pytest.raises(IdempotencyConflict) as refused:
        apply_adjustment(ctx, command(wallet, Direction.CREDIT, 2 * USD, key="key-00000001"), actor=OPERATOR)
    assert refused.value.details["differing_fields"] == ["amount_usd"]
    assert store.balance_of(wallet) == 11 * USD


def test_a_refused_request_frees_its_key_for_a_retry(store: MemoryStore, ctx: ServiceContext) -> None:
    wallet = store.open_account(OwnerScope.END_USER, "user-1", USD)
    with pytest.raises(InsufficientBalance):
        apply_adjustment(ctx, command(wallet, Direction.DEBIT, 2 * USD, key="key-00000002"), actor=OPERATOR)
    assert store.state.keys == {}
    apply_adjustment(ctx, command(wallet, Direction.CREDIT, USD), actor=OPERATOR)
    retried = apply_adjustment(ctx, command(wallet, Direction.DEBIT, 2 * USD, key="key-00000002"), actor=OPERATOR)
    assert retried.result.wallet_balance_units == 0


def test_system_accounts_and_unknown_wallets_are_refused(store: MemoryStore, ctx: ServiceContext) -> None:
    system = store.open_account(OwnerScope.SYSTEM, "stripe_clearing")
    with pytest.raises(InvalidRequest):
        apply_adjustment(ctx, command(system, Direction.CREDIT, USD), actor=OPERATOR)
    with pytest.raises(NotFound):
        apply_adjustment(ctx, command("00000000-0000-4000-8000-000000000000", Direction.CREDIT, USD), actor=OPERATOR)
    assert store.state.adjustments == {}
