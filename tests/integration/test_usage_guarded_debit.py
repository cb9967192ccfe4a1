"""Issue 16: the usage batch's end-user wallets move in ONE guarded, all-or-nothing statement
(no ``SELECT … FOR UPDATE`` round trip), and several posting workers share the load.

- ``debit_wallets`` moves every wallet or none: a wallet that cannot pay, one with something
  reserved or one that does not exist leaves all of them untouched;
- a batch with an event its wallet cannot pay is still decided event by event (the careful
  path): the affordable ones are recorded, the rest refused, balances exact;
- two posting workers racing on wallets funded for exactly N events record exactly N, never
  overdraw, and the ledger reconciles.
"""

from __future__ import annotations

from concurrent.futures import Future

from modelfaucet.domain.ledger import PLATFORM_OWNER_ID, OwnerScope
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.posting_engine import PostingEngine
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.record_usage import UsageOutcome, record_usage_batch
from modelfaucet.services.seed import SeedResult

from .usage_support import balance, event, fund_end_user, usage_count

RETAIL = 136_500  # the retail price of usage_support.event()


def _owner(ctx: ServiceContext, wallet: str) -> str:
    with ctx.unit_of_work() as uow:
        found = uow.ledger.get(wallet)
    assert found is not None and found.owner_id is not None
    return found.owner_id


def test_debit_wallets_moves_all_or_nothing(ctx: ServiceContext, seeded: SeedResult) -> None:
    rich = fund_end_user(ctx, seeded, "rich", 5 * RETAIL)
    poor = fund_end_user(ctx, seeded, "poor", RETAIL - 1)
    with ctx.unit_of_work() as uow:
        platform = uow.ledger.ensure(OwnerScope.PLATFORM, PLATFORM_OWNER_ID)
        refused = uow.ledger.debit_wallets(OwnerScope.END_USER, {rich: -RETAIL, poor: -RETAIL})
        missing = uow.ledger.debit_wallets(OwnerScope.END_USER, {rich: -RETAIL, "no-such-wallet": 0})
        # An account of another scope is never debited as an end user's wallet.
        other_scope = uow.ledger.debit_wallets(OwnerScope.END_USER, {rich: -RETAIL, platform: -1})
        uow.commit()
    assert refused is None and missing is None and other_scope is None
    assert balance(ctx, rich) == 5 * RETAIL and balance(ctx, poor) == RETAIL - 1  # nothing moved
    owners = {_owner(ctx, rich), _owner(ctx, poor)}
    with ctx.unit_of_work() as uow:
        moved = uow.ledger.debit_wallets(OwnerScope.END_USER, {rich: -2 * RETAIL, poor: -(RETAIL - 1)})
        assert moved is not None
        assert {state.account_id: state.balance_units for state in moved} == {rich: 3 * RETAIL, poor: 0}
        assert {state.owner_id for state in moved} == owners
        uow.rollback()


def test_a_wallet_with_something_reserved_is_left_to_the_careful_path(ctx: ServiceContext, seeded: SeedResult) -> None:
    wallet = fund_end_user(ctx, seeded, "reserving", 5 * RETAIL)
    with ctx.unit_of_work() as uow:
        uow.ledger.change_reserved(wallet, 1)
        uow.commit()
    with ctx.unit_of_work() as uow:
        assert uow.ledger.debit_wallets(OwnerScope.END_USER, {wallet: -RETAIL}) is None
    # The careful path still posts it, against the available balance.
    [outcome] = record_usage_batch(ctx, [event("reserving-1", external_user_id="reserving")])
    assert outcome.status == "recorded" and outcome.receipt is not None
    assert outcome.receipt.end_user_balance_units == 4 * RETAIL
    assert balance(ctx, wallet) == 4 * RETAIL


def test_a_batch_with_an_unaffordable_event_is_decided_event_by_event(ctx: ServiceContext, seeded: SeedResult) -> None:
    wallet = fund_end_user(ctx, seeded, "two-and-a-half", 2 * RETAIL + RETAIL // 2)
    other = fund_end_user(ctx, seeded, "plenty", 10 * RETAIL)
    events = [event(f"mixed-{n}", external_user_id="two-and-a-half") for n in range(3)]
    events.insert(1, event("mixed-other", external_user_id="plenty"))
    outcomes = record_usage_batch(ctx, events)
    assert [o.status for o in outcomes] == ["recorded", "recorded", "recorded", "rejected"]
    assert outcomes[3].error is not None and outcomes[3].error.code == "insufficient_balance"
    receipts = [o.receipt for o in outcomes[:3]]
    assert [r.end_user_balance_units for r in receipts if r is not None] == [
        RETAIL + RETAIL // 2,
        9 * RETAIL,
        RETAIL // 2,
    ]
    assert balance(ctx, wallet) == RETAIL // 2 and balance(ctx, other) == 9 * RETAIL
    assert reconcile_ledger(ctx).ok


def test_two_workers_record_exactly_what_the_wallets_can_pay(ctx: ServiceContext, seeded: SeedResult) -> None:
    users = [f"racer-{n}" for n in range(4)]
    wallets = [fund_end_user(ctx, seeded, user, 5 * RETAIL) for user in users]
    engine = PostingEngine(ctx, workers=2, max_wait_seconds=0.001)
    futures: list[Future[UsageOutcome]] = []
    for n in range(60):  # 15 events per user, 5 affordable each
        futures += engine.submit_many([event(f"race-{n}", external_user_id=users[n % 4])])
    outcomes = [future.result(120) for future in futures]
    engine.close()
    assert sum(o.status == "recorded" for o in outcomes) == 20
    assert all(o.status == "recorded" or (o.error and o.error.code == "insufficient_balance") for o in outcomes)
    assert [balance(ctx, wallet) for wallet in wallets] == [0, 0, 0, 0]
    assert usage_count(ctx) == 20
    assert engine.events_posted == 60
    assert reconcile_ledger(ctx).ok
    # Every receipt's balance is one the wallet really passed through.
    after = sorted(o.receipt.end_user_balance_units for o in outcomes if o.receipt is not None)
    assert after == sorted([k * RETAIL for k in range(5)] * 4)
