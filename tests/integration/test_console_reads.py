"""The reads the console added, on both databases: usage per UTC day, ledger entries paged by
cursor, and the recent top-ups."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from modelfaucet.domain.money import UNITS_PER_USD
from modelfaucet.domain.outcomes import InvalidRequest, NotFound
from modelfaucet.services.console_overview import DayRange, usage_per_day
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.record_usage import record_usage
from modelfaucet.services.repositories import NewTopup
from modelfaucet.services.seed import SeedResult
from modelfaucet.services.topups import recent_topups
from modelfaucet.services.wallets import wallet_entries
from tests.integration.usage_support import event, fund_end_user


def at(ctx: ServiceContext, moment: datetime) -> ServiceContext:
    return ServiceContext(db=ctx.db, settings=ctx.settings, clock=lambda: moment)


def test_usage_is_summed_per_utc_day_and_empty_days_are_zero(ctx: ServiceContext, seeded: SeedResult) -> None:
    fund_end_user(ctx, seeded, "demo-user-1", 100 * UNITS_PER_USD)
    moments = [
        datetime(2026, 3, 1, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 3, 3, 12, tzinfo=UTC),
        datetime(2026, 3, 4, 0, 0, tzinfo=UTC),  # outside the range (its end is exclusive)
        datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC),  # before it
    ]
    outcomes = [record_usage(at(ctx, m), event(f"day-{n}")) for n, m in enumerate(moments)]
    assert all(outcome is not None for outcome in outcomes)
    days = DayRange(date(2026, 3, 1), date(2026, 3, 3))
    found = usage_per_day(ctx, days)
    assert [d.day for d in found] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert [d.calls for d in found] == [2, 0, 1]
    assert found[0].retail_price_units > 0 and found[1].retail_price_units == 0
    assert found[0].retail_price_units == 2 * found[2].retail_price_units
    assert found[0].platform_revenue_units > 0


def test_ledger_entries_page_by_cursor_newest_first(ctx: ServiceContext, seeded: SeedResult) -> None:
    wallet = fund_end_user(ctx, seeded, "paging-user", 0)
    for n in range(5):
        fund_end_user(ctx, seeded, "paging-user", (n + 1) * UNITS_PER_USD)
    first = wallet_entries(ctx, wallet, limit=2)
    assert [e.amount_units for e in first.entries] == [5 * UNITS_PER_USD, 4 * UNITS_PER_USD]
    assert first.next_before_id == first.entries[-1].posting_id
    second = wallet_entries(ctx, wallet, limit=2, before_id=first.next_before_id)
    assert [e.amount_units for e in second.entries] == [3 * UNITS_PER_USD, 2 * UNITS_PER_USD]
    last = wallet_entries(ctx, wallet, limit=2, before_id=second.next_before_id)
    assert [e.amount_units for e in last.entries] == [UNITS_PER_USD]
    assert last.next_before_id is None
    with pytest.raises(NotFound):
        wallet_entries(ctx, "00000000-0000-0000-0000-000000000000")
    with pytest.raises(InvalidRequest):
        wallet_entries(ctx, wallet, limit=0)


def test_recent_topups_are_newest_first_and_within_the_window(ctx: ServiceContext, seeded: SeedResult) -> None:
    now = datetime.now(UTC)
    for n, age in enumerate((40, 3, 1)):
        with at(ctx, now - timedelta(days=age)).unit_of_work() as uow:
            assert uow.topups.add_pending(
                NewTopup(
                    id=f"00000000-0000-0000-0000-00000000000{n}",
                    checkout_session_id=f"cs_test_{n}",
                    account_id=seeded.end_user_wallet_id,
                    end_user_id=seeded.end_user_id,
                    amount_units=(n + 1) * UNITS_PER_USD,
                    amount_cents=(n + 1) * 100,
                    currency="usd",
                    checkout_url="https://checkout.stripe.test/x",
                )
            )
            uow.commit()
    found = recent_topups(ctx, since=now - timedelta(days=30))
    assert [t.checkout_session_id for t in found] == ["cs_test_2", "cs_test_1"]
