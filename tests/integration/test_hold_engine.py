"""The hold engine (group commit for holds, SPEC §18) on SQLite and PostgreSQL: many
concurrent placers and voiders share transactions, never over-reserve a wallet, and each
batch moves a wallet's reserved amount in ONE statement however many holds it places,
voids and expires there."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from modelfaucet.adapters.db.tables import accounts, holds
from modelfaucet.domain.holds import HoldStatus
from modelfaucet.domain.outcomes import InsufficientBalance, ServiceUnavailable
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.group_commit import GroupCommit
from modelfaucet.services.hold_engine import HoldEngine, placement
from modelfaucet.services.holds import HoldOutcome, PlaceHold, VoidHold, VoidOutcome, apply_holds, void_result
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import SeedResult
from tests.integration.usage_support import event as usage_event
from tests.sql_support import statements

UNITS = 10**8
OPENING = 10 * UNITS  # the seeded demo wallet


def place(request_id: str, amount_units: int, *, ttl: int = 300) -> PlaceHold:
    return PlaceHold(request_id, "app_pub_demo", "demo-user-1", "customer_reply", amount_units, ttl)


def reserved(ctx: ServiceContext, wallet_id: str) -> int:
    with ctx.reader() as uow:
        return uow.ledger.require(wallet_id).reserved_units


@pytest.fixture
def engine(ctx: ServiceContext) -> Iterator[HoldEngine]:
    hold_engine = HoldEngine(ctx, max_wait_seconds=0.02)
    yield hold_engine
    hold_engine.close()


def test_concurrent_placers_share_batches_and_never_over_reserve(
    ctx: ServiceContext, seeded: SeedResult, engine: HoldEngine
) -> None:
    callers = 40
    with ThreadPoolExecutor(max_workers=callers) as pool:
        outcomes = list(
            pool.map(
                lambda n: placement(engine.place_many([place(f"c-{n}", UNITS // 2)])[0].result(30)), range(callers)
            )
        )
    held = [o for o in outcomes if o.error is None]
    refused = [o for o in outcomes if o.error is not None]
    assert len(held) == 20, "exactly the wallet's 10.00 in 0.50 holds"
    assert all(isinstance(o.error, InsufficientBalance) for o in refused)
    assert reserved(ctx, seeded.end_user_wallet_id) == OPENING
    assert engine.batches < callers, "the callers shared transactions"

    with ThreadPoolExecutor(max_workers=len(held)) as pool:
        voided = list(pool.map(lambda o: void_result(engine.void(o.hold.id).result(30)), held))
    assert {hold.status for hold in voided} == {HoldStatus.RELEASED}
    assert reserved(ctx, seeded.end_user_wallet_id) == 0
    assert reconcile_ledger(ctx).ok


def test_a_batch_moves_each_wallets_reserved_amount_in_one_statement(ctx: ServiceContext, seeded: SeedResult) -> None:
    [first, doomed] = apply_holds(ctx, [place("first", 2 * UNITS), place("doomed", 3 * UNITS, ttl=1)])
    assert isinstance(first, HoldOutcome) and first.hold is not None
    assert isinstance(doomed, HoldOutcome) and doomed.hold is not None
    later = ServiceContext(
        db=ctx.db,
        settings=ctx.settings,
        clock=lambda: doomed.hold.expires_at + timedelta(seconds=1),  # type: ignore[union-attr]
    )
    with statements(ctx) as seen:
        # One batch: the overdue hold expires, one hold is voided, two are placed (one of them
        # fits only because the void and the expiry before it freed their amounts).
        outcomes = apply_holds(later, [VoidHold(first.hold.id), place("second", 6 * UNITS), place("third", 4 * UNITS)])
    moves = [sql for sql in seen if sql.upper().startswith("UPDATE ACCOUNTS")]
    assert isinstance(outcomes[0], VoidOutcome) and outcomes[0].error is None
    assert [o.error for o in outcomes[1:] if isinstance(o, HoldOutcome)] == [None, None]
    assert len(moves) == 1, moves
    assert reserved(ctx, seeded.end_user_wallet_id) == 10 * UNITS
    with ctx.reader() as uow:
        stored = uow.holds.by_ids([first.hold.id, doomed.hold.id])
    assert (stored[first.hold.id].status, stored[doomed.hold.id].status) == (HoldStatus.RELEASED, HoldStatus.EXPIRED)
    assert reconcile_ledger(later).ok


def test_a_failed_batch_fails_every_caller_and_a_closed_engine_takes_no_more() -> None:
    def broken(_commands: Any) -> list[Any]:
        raise RuntimeError("database away")

    commit: GroupCommit[Any, Any] = GroupCommit(broken, name="broken")
    futures = commit.submit_many([place("x", 1), place("y", 1)])
    for future in futures:
        with pytest.raises(RuntimeError, match="database away"):
            future.result(10)
    commit.close()
    with pytest.raises(ServiceUnavailable):
        commit.submit(place("z", 1))


# --- reconciliation: reserved = open holds + open payouts (SPEC §18) ------------------------


@pytest.mark.parametrize("broken", ["reserved drifted", "hold ended without its release"])
def test_reconciliation_lists_a_wallet_whose_reserved_is_not_its_open_holds(
    ctx: ServiceContext, seeded: SeedResult, broken: str
) -> None:
    [placed] = apply_holds(ctx, [place("kept", 3 * UNITS)])
    assert isinstance(placed, HoldOutcome) and placed.hold is not None
    assert reconcile_ledger(ctx).ok
    with ctx.db.engine.begin() as connection:  # corrupt the books behind the services' back
        if broken == "reserved drifted":
            connection.execute(
                accounts.update().where(accounts.c.id == seeded.end_user_wallet_id).values(reserved_units=UNITS)
            )
        else:
            ended = {"status": "released", "ended_at": placed.hold.created_at}
            connection.execute(holds.update().where(holds.c.id == placed.hold.id).values(**ended))
    check = reconcile_ledger(ctx).as_dict()["checks"]["reservations_match_open_payouts"]
    assert not check["ok"]
    [offender] = check["offending"]
    assert offender["wallet_id"] == seeded.end_user_wallet_id
    expected = ("1.00000000", "3.00000000") if broken == "reserved drifted" else ("3.00000000", "0.00000000")
    assert (offender["reserved_usd"], offender["open_holds_usd"]) == expected


# --- a capture racing a void of the same hold -------------------------------------------------


def test_a_capture_racing_a_void_ends_the_hold_once(ctx: ServiceContext, seeded: SeedResult) -> None:
    from modelfaucet.services.record_usage import record_usage

    outcomes = {"captured": 0, "released": 0}
    for n in range(8):
        [placed] = apply_holds(ctx, [place(f"race-{n}", UNITS // 10)])
        assert isinstance(placed, HoldOutcome) and placed.hold is not None
        usage = usage_event(f"race-{n}", input_tokens=1000, output_tokens=100)
        with ThreadPoolExecutor(max_workers=2) as pool:
            jobs = [pool.submit(record_usage, ctx, usage), pool.submit(apply_holds, ctx, [VoidHold(placed.hold.id)])]
            if n % 2:
                jobs.reverse()
            results = [job.result(30) for job in jobs]
        event_outcome = next(r for r in results if not isinstance(r, list))
        [void_outcome] = next(r for r in results if isinstance(r, list))
        assert event_outcome.status.value == "recorded"  # with or without its hold
        assert isinstance(void_outcome, VoidOutcome)
        with ctx.reader() as uow:
            final = uow.holds.by_ids([placed.hold.id])[placed.hold.id].status
        if final is HoldStatus.CAPTURED:
            assert event_outcome.receipt is not None and event_outcome.receipt.hold_id == placed.hold.id
            assert void_outcome.error is not None  # invalid_state: the capture came first
        else:
            assert final is HoldStatus.RELEASED and void_outcome.error is None
            assert event_outcome.receipt is not None and event_outcome.receipt.hold_id is None
        outcomes[final.value] += 1
    assert reserved(ctx, seeded.end_user_wallet_id) == 0
    assert reconcile_ledger(ctx).ok


def test_a_usage_batch_captures_its_holds_together_each_naming_its_event(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    from modelfaucet.services.record_usage import UsageStatus, record_usage_batch

    placed = apply_holds(ctx, [place(f"cap-{n}", UNITS // 10) for n in range(5)])
    assert all(isinstance(o, HoldOutcome) and o.hold is not None for o in placed)
    [gone] = apply_holds(ctx, [VoidHold(placed[4].hold.id)])  # type: ignore[union-attr]
    assert isinstance(gone, VoidOutcome) and gone.error is None
    events = [usage_event(f"cap-{n}", input_tokens=1000, output_tokens=100) for n in range(5)]
    with statements(ctx) as seen:
        outcomes = record_usage_batch(ctx, events)
    captures = [sql for sql in seen if sql.upper().startswith("UPDATE HOLDS")]
    assert [o.status for o in outcomes] == [UsageStatus.RECORDED] * 5
    ids = [o.hold.id for o in placed if isinstance(o, HoldOutcome) and o.hold is not None]
    # The four held holds are captured by their own events; the released one is not
    # captured, and its event is an ordinary call.
    assert [o.receipt.hold_id if o.receipt else None for o in outcomes] == [*ids[:4], None]
    with ctx.reader() as uow:
        stored = uow.holds.by_ids(ids)
    assert [stored[i].status for i in ids] == [HoldStatus.CAPTURED] * 4 + [HoldStatus.RELEASED]
    assert [stored[i].capture_request_id for i in ids] == ["cap-0", "cap-1", "cap-2", "cap-3", None]
    assert all(stored[i].ended_at is not None for i in ids)
    if ctx.db.is_postgres:
        assert len(captures) == 1, captures  # the batch's four captures: one statement
    assert reserved(ctx, seeded.end_user_wallet_id) == 0
    assert reconcile_ledger(ctx).ok


def test_capture_many_moves_only_held_holds(ctx: ServiceContext, seeded: SeedResult) -> None:
    placed = apply_holds(ctx, [place("kept", UNITS // 10), place("voided", UNITS // 10)])
    kept, voided = (o.hold.id for o in placed if isinstance(o, HoldOutcome) and o.hold is not None)
    apply_holds(ctx, [VoidHold(voided)])
    with ctx.unit_of_work() as uow:
        assert uow.holds.capture_many({}) == 0
        assert uow.holds.capture_many({kept: "by-event", voided: "too-late", "no-such-hold": "x"}) == 1
        uow.rollback()
    with ctx.reader() as uow:
        stored = uow.holds.by_ids([kept, voided])
    assert stored[kept].status is HoldStatus.HELD, "rolled back with its unit of work"
    assert stored[voided].capture_request_id is None


def test_a_placement_looks_for_overdue_holds_only_on_wallets_with_something_reserved(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    """A wallet's reserved amount is its held holds: with nothing reserved there is no hold
    to expire, and the batch does not read the holds table for one."""
    with statements(ctx) as seen:
        [first] = apply_holds(ctx, [place("first-of-wallet", UNITS)])
        before_second = len([sql for sql in seen if sql.upper().startswith("SELECT HOLDS.")])
        [second] = apply_holds(ctx, [place("second-of-wallet", UNITS)])
    reads = [sql for sql in seen if sql.upper().startswith("SELECT HOLDS.")]
    assert isinstance(first, HoldOutcome) and first.error is None
    assert isinstance(second, HoldOutcome) and second.error is None
    assert before_second == 1, "the request-id lookup only: nothing was reserved"
    assert len(reads) - before_second == 2, "the request-id lookup and the overdue scan of the reserving wallet"
    assert reserved(ctx, seeded.end_user_wallet_id) == 2 * UNITS


def test_a_hold_whose_request_id_another_transaction_stored_first_is_a_concurrent_write(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    """New holds go in by COPY on PostgreSQL: a request id committed meanwhile by another
    placer is still told as ConcurrentWrite (the batch is decided again), not as an error."""
    from dataclasses import replace

    from modelfaucet.services.unit_of_work import ConcurrentWrite

    [placed] = apply_holds(ctx, [place("raced", UNITS // 10)])
    assert isinstance(placed, HoldOutcome) and placed.hold is not None
    twin = replace(placed.hold, id="00000000-0000-4000-8000-000000000001")
    with ctx.unit_of_work() as uow, pytest.raises(ConcurrentWrite):
        uow.holds.add_many([twin])
    with ctx.reader() as uow:
        assert set(uow.holds.by_request_ids(["raced"])) == {"raced"}
        assert uow.holds.by_ids([twin.id]) == {}
