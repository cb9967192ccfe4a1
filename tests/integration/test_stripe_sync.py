"""The three-way Stripe sync against the offline provider, on SQLite and PostgreSQL (SPEC §20).

The offline provider keeps its own record of the sessions it opened; ``simulate`` changes
it as Stripe would and hands back the event without delivering it — a lost webhook. The
sync must find it and credit it once, however it races the late webhook.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from modelfaucet.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from modelfaucet.adapters.stripe.checkout import CheckoutRequest
from modelfaucet.adapters.stripe.offline import OfflineStripe, Simulation
from modelfaucet.domain.outcomes import InvalidState
from modelfaucet.domain.stripe_sync import CHECKOUT_SESSION_LIFETIME
from modelfaucet.services.checkout import CheckoutCreated
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import SeedResult
from modelfaucet.services.stripe_sync import last_sync_flags
from modelfaucet.services.unit_of_work import UnitOfWork
from tests.stripe_support import (
    assert_books_reconcile,
    balance_of,
    deliver_event,
    pending_topup,
    session_user,
    simulate,
    sync,
    sync_counts,
    topup_status,
)

FIVE_USD = 500_000_000
TEN_USD = 1_000_000_000  # the demo end user's opening balance


@pytest.fixture
def topup(ctx: ServiceContext, seeded: SeedResult) -> CheckoutCreated:
    return pending_topup(ctx, session_user(ctx, seeded), FIVE_USD)


def test_a_lost_webhook_is_credited_by_the_sync_once_and_the_books_reconcile(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    simulate(ctx, Simulation.COMPLETE, topup.checkout_session_id)  # paid in Stripe; the webhook is lost
    assert topup_status(ctx, topup.checkout_session_id) == "pending"

    report = sync(ctx)

    [row] = report.rows
    assert (row.outcome, row.stripe_status, row.local_status) == ("credited_now", "paid", "credited")
    assert balance_of(ctx, seeded.end_user_wallet_id) == TEN_USD + FIVE_USD
    assert_books_reconcile(ctx)
    with ctx.reader() as uow:
        section = last_sync_flags(uow)
    assert section.ok and section.summary["credited_now"] == 1


def test_a_second_sync_writes_no_credit_and_no_status_change(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    simulate(ctx, Simulation.COMPLETE, topup.checkout_session_id)
    sync(ctx)
    before = sync_counts(ctx)

    again = sync(ctx)

    assert [row.outcome for row in again.rows] == ["ok"]
    after = sync_counts(ctx)
    assert after == before | {"sync_runs": before["sync_runs"] + 1, "audit": before["audit"] + 1}
    assert balance_of(ctx, seeded.end_user_wallet_id) == TEN_USD + FIVE_USD


def test_a_dry_run_writes_nothing(ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated) -> None:
    simulate(ctx, Simulation.COMPLETE, topup.checkout_session_id)
    before = sync_counts(ctx)

    report = sync(ctx, dry_run=True)

    assert [(row.outcome, row.local_status) for row in report.rows] == [("credited_now", "pending")]
    assert sync_counts(ctx) == before
    assert topup_status(ctx, topup.checkout_session_id) == "pending"
    with ctx.reader() as uow:
        assert last_sync_flags(uow).last_sync_at is None


class WebhookJustBeforeWrites:
    """Opens units of work like the real factory, but lets a late webhook commit right before
    the sync's first write — after the sync has read and classified the session."""

    def __init__(self, ctx: ServiceContext, deliver: Callable[[], object]) -> None:
        self.inner = SqlUnitOfWorkFactory(ctx.db, ctx.clock)
        self.deliver, self.fired = deliver, False

    def __call__(self, *, read_only: bool = False, snapshot: bool = False, autocommit: bool = False) -> UnitOfWork:
        if not (read_only or snapshot or self.fired):
            self.fired = True
            self.deliver()
        return self.inner(read_only=read_only, snapshot=snapshot)


def test_a_sync_racing_the_late_webhook_for_the_same_session_credits_once(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    paid = simulate(ctx, Simulation.COMPLETE, topup.checkout_session_id)
    late = WebhookJustBeforeWrites(ctx, lambda: deliver_event(ctx, paid))

    report = sync(replace(ctx, units=late))

    assert late.fired
    assert [row.outcome for row in report.rows] == ["ok"], "decided again on the locked, credited top-up"
    assert sync_counts(ctx)["credited"] == 1
    assert balance_of(ctx, seeded.end_user_wallet_id) == TEN_USD + FIVE_USD
    assert_books_reconcile(ctx)


def test_syncs_and_late_webhooks_running_at_once_credit_each_session_once(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    user = session_user(ctx, seeded)
    topups = [pending_topup(ctx, user, FIVE_USD + n * 1_000_000) for n in range(4)]
    events = [simulate(ctx, Simulation.COMPLETE, t.checkout_session_id) for t in topups]
    start = threading.Barrier(len(events) + 2)

    def after_barrier(work: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            start.wait(timeout=30)
            return work()

        return run

    jobs = [after_barrier(lambda e=e: deliver_event(ctx, e)) for e in events]  # type: ignore[misc]
    jobs += [after_barrier(lambda: sync(ctx)), after_barrier(lambda: sync(ctx))]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result(timeout=120)

    assert sync_counts(ctx)["credited"] == len(topups)
    expected = TEN_USD + sum(t.amount_units for t in topups)
    assert balance_of(ctx, seeded.end_user_wallet_id) == expected
    assert_books_reconcile(ctx)


def test_a_pending_topup_older_than_the_checkout_session_lifetime_is_expired_by_the_sync(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    long_ago = datetime.now(UTC) - CHECKOUT_SESSION_LIFETIME - timedelta(hours=1)
    then = replace(ctx, clock=lambda: long_ago)
    stale = pending_topup(then, session_user(then, seeded), FIVE_USD)
    fresh = pending_topup(ctx, session_user(ctx, seeded), FIVE_USD + 1_000_000)

    report = sync(ctx)

    outcomes = {row.checkout_session_id: (row.outcome, row.stripe_status) for row in report.rows}
    assert outcomes == {
        stale.checkout_session_id: ("expired_now", "expired"),  # Stripe expired it too
        fresh.checkout_session_id: ("ok", "open"),
    }
    assert topup_status(ctx, stale.checkout_session_id) == "failed"
    assert topup_status(ctx, fresh.checkout_session_id) == "pending"
    with pytest.raises(InvalidState, match="only an open session can be paid"):
        simulate(ctx, Simulation.COMPLETE, stale.checkout_session_id)


def test_a_session_unknown_locally_is_flagged_never_credited_and_listed_for_reconciliation(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated
) -> None:
    stranger = OfflineStripe(ctx.db, ctx.clock).create_checkout_session(
        CheckoutRequest(900, "usd", "https://a.example/ok", "https://a.example/no", "credits", {}, "w", "key-stranger")
    )
    simulate(ctx, Simulation.COMPLETE, stranger.id)
    before = sync_counts(ctx)

    report = sync(ctx)

    flagged = {row.checkout_session_id: (row.outcome, row.topup_id, row.amount_units) for row in report.flagged}
    assert flagged == {stranger.id: ("unknown_locally", None, 900_000_000)}
    assert sync_counts(ctx)["transactions"] == before["transactions"]
    with ctx.reader() as uow:
        section = last_sync_flags(uow)
    assert not section.ok
    assert [item["checkout_session_id"] for item in section.as_dict()["flagged"]] == [stranger.id]
    assert section.as_dict()["flagged"][0]["outcome"] == "unknown_locally"
    # The reconciliation report carries the section, and a flagged sync fails it.
    reconciliation = reconcile_ledger(ctx)
    assert not reconciliation.ok
    assert reconciliation.as_dict()["stripe"]["flagged"][0]["checkout_session_id"] == stranger.id
    assert all(check.ok for check in reconciliation.checks)
