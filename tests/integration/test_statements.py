"""Statements and as-of balances on SQLite and PostgreSQL (SPEC §19).

Postings are made at chosen moments (the unit of work's clock), out of order on purpose;
every statement must satisfy opening + Σ entries = closing = the balance as of ``to`` =
the plain sum of the postings created before ``to``. The as-of balance is read from
either side of the instant (the sum before it, or the stored balance minus what came
after): both must agree everywhere.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelfaucet.domain.ledger import OwnerScope, Posting, SystemAccount, Transaction
from modelfaucet.services import statements
from modelfaucet.services.context import ServiceContext

T0 = datetime(2031, 5, 1, tzinfo=UTC)
USD = 100_000_000
EXAMPLES = settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def new_wallet(ctx: ServiceContext) -> str:
    with ctx.unit_of_work() as uow:
        wallet = uow.ledger.ensure(OwnerScope.PLATFORM, f"statement-test-{uuid.uuid4()}")
        uow.commit()
    return wallet


def post_at(ctx: ServiceContext, clock: Clock, at: datetime, wallet: str, units: int) -> None:
    clock.now = at
    with ctx.unit_of_work() as uow:
        contra = uow.ledger.ensure(OwnerScope.SYSTEM, SystemAccount.ADJUSTMENT_CONTRA)
        reason = "wallet_adjustment" if units > 0 else "wallet_refund"
        uow.ledger.post(
            Transaction.of(
                reason,
                [Posting(wallet, units, reason), Posting(contra, -units, reason)],
                reference_type="test",
                reference_id=f"h{(at - T0).total_seconds():.0f}",
            )
        )
        uow.commit()


def clocked(ctx: ServiceContext, clock: Clock) -> ServiceContext:
    return replace(ctx, clock=clock)


@EXAMPLES
@given(
    postings=st.lists(st.tuples(st.integers(0, 96), st.integers(-3 * USD, 5 * USD).filter(bool)), max_size=20),
    bounds=st.tuples(st.integers(-5, 100), st.integers(-5, 100)).map(sorted),
    read_at_hour=st.integers(97, 400),
)
def test_opening_plus_the_entries_is_the_closing_which_is_the_balance_as_of_to(
    ctx: ServiceContext, postings: list[tuple[int, int]], bounds: list[int], read_at_hour: int
) -> None:
    clock = Clock()
    ctx = clocked(ctx, clock)
    wallet = new_wallet(ctx)
    for hour, units in postings:
        post_at(ctx, clock, T0 + timedelta(hours=hour), wallet, units)
    clock.now = T0 + timedelta(hours=read_at_hour)
    start, end = (T0 + timedelta(hours=h) for h in bounds)

    of = statements.statement_of(ctx, wallet, start=start, end=end)
    with statements.open_statement(ctx, of) as read:
        summary, entries = read.summary, list(read.entries)

    amounts = [entry.amount_units for entry in entries]
    assert summary.opening_units + sum(amounts) == summary.closing_units
    assert [e.balance_after_units for e in entries] == [
        summary.opening_units + sum(amounts[: i + 1]) for i in range(len(amounts))
    ]
    assert summary.closing_units == statements.balance_as_of(ctx, wallet, as_of=end).balance_units
    assert summary.opening_units == sum(units for hour, units in postings if hour < bounds[0])
    assert summary.closing_units == sum(units for hour, units in postings if hour < bounds[1])
    assert sum(summary.totals_by_reason.values()) == sum(amounts)
    assert [e.posted_at for e in entries] == sorted(e.posted_at for e in entries)


def test_the_as_of_balance_is_the_same_read_from_either_side_of_the_instant(ctx: ServiceContext) -> None:
    clock = Clock()
    ctx = clocked(ctx, clock)
    wallet = new_wallet(ctx)
    plan = [(5, 4 * USD), (1, 2 * USD), (9, -USD), (5, 3), (20, 7 * USD)]
    for hour, units in plan:
        post_at(ctx, clock, T0 + timedelta(hours=hour), wallet, units)
    for hour in range(-1, 23):
        instant = T0 + timedelta(hours=hour)
        expected = sum(units for at, units in plan if at < hour)
        # Read "now" just after the postings (the stored balance side for late instants)
        # and long after (the sum-before side for every one of them).
        for read_at in (T0 + timedelta(hours=21), T0 + timedelta(days=3650)):
            clock.now = read_at
            assert statements.balance_as_of(ctx, wallet, as_of=instant).balance_units == expected, (hour, read_at)


def test_a_posting_made_at_the_instant_is_after_it(ctx: ServiceContext) -> None:
    clock = Clock()
    ctx = clocked(ctx, clock)
    wallet = new_wallet(ctx)
    post_at(ctx, clock, T0, wallet, 9)
    clock.now = T0 + timedelta(days=1)
    assert statements.balance_as_of(ctx, wallet, as_of=T0).balance_units == 0
    assert statements.balance_as_of(ctx, wallet, as_of=T0 + timedelta(microseconds=1)).balance_units == 9
    of = statements.statement_of(ctx, wallet, start=T0, end=T0 + timedelta(hours=1))
    with statements.open_statement(ctx, of) as read:
        (entry,) = read.entries
    assert (entry.amount_units, entry.balance_after_units, entry.reference) == (9, 9, "test:h0")
