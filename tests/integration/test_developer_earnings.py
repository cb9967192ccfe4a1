"""Earnings on SQLite and PostgreSQL (SPEC §17): over generated usage, a developer's
earnings totals equal their ``usage_channel_revenue`` postings in the window, every
grouping adds up to the same totals, and another developer's usage never shows.

Usage is posted through the real ``record_usage`` at chosen moments (every route mode,
a feature with a visible gateway fee so BYOK calls earn too, free calls that post
nothing); each example has developers and apps of its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import and_, func, select

from modelfaucet.adapters.db.tables import ledger_postings
from modelfaucet.domain.earnings import EarningsGrouping
from modelfaucet.domain.ledger import OwnerScope, Posting, Reason, SystemAccount, Transaction
from modelfaucet.domain.rating import RouteMode
from modelfaucet.services import catalog, developer_access
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.record_usage import UsageEvent, record_usage
from modelfaucet.services.seed import SeedResult

OPERATOR = Actor("alice")
T0 = datetime(2031, 1, 30, 20, 0, tzinfo=UTC)  # windows straddle a month and a day boundary
USD = 100_000_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class Books:
    developers: tuple[str, str]
    apps: tuple[tuple[str, str], ...]  # (public_app_id, developer id)


def open_books(ctx: ServiceContext) -> Books:
    """Two developers: the first with two apps, the second with one; each app has a
    feature with a visible gateway fee and a funded end user."""
    run = uuid.uuid4().hex[:10]
    catalog.put_model_price(
        ctx,
        OPERATOR,
        provider="mock",
        model="mock-large",
        input_per_1m_units=3 * USD,
        output_per_1m_units=9 * USD,
        cached_per_1m_units=0,
    )
    developers = tuple(
        catalog.create_developer(ctx, OPERATOR, name=name, email=f"{name}-{run}@example.com").developer.id
        for name in ("first", "second")
    )
    apps = ((f"a1-{run}", developers[0]), (f"a2-{run}", developers[0]), (f"b1-{run}", developers[1]))
    for public_app_id, developer_id in apps:
        catalog.create_app(
            ctx,
            OPERATOR,
            developer_id=developer_id,
            public_app_id=public_app_id,
            name=public_app_id,
            default_revenue_share_bps=3500,
        )
        catalog.put_feature(
            ctx,
            OPERATOR,
            public_app_id=public_app_id,
            feature_key="reply",
            display_name="Reply",
            pricing=catalog.FeaturePricingInput(explicit_gateway_fee_units=2_000_000),
        )
        with ctx.unit_of_work() as uow:
            app = uow.catalog.get_app(public_app_id)
            assert app is not None
            wallet = uow.ledger.ensure(OwnerScope.END_USER, uow.catalog.ensure_end_user(app.id, "user"))
            equity = uow.ledger.ensure(OwnerScope.SYSTEM, SystemAccount.SEED_EQUITY)
            reason = Reason.SEED_OPENING_BALANCE
            uow.ledger.post(
                Transaction.of(
                    reason, [Posting.credit(wallet, 1000 * USD, reason), Posting.debit(equity, 1000 * USD, reason)]
                )
            )
            uow.commit()
    return Books(developers, apps)  # type: ignore[arg-type]


def channel_postings(ctx: ServiceContext, developer_id: str, start: datetime, end: datetime) -> int:
    with ctx.unit_of_work() as uow:
        wallet = uow.ledger.id_for(OwnerScope.DEVELOPER, developer_id)
    p = ledger_postings.c
    with ctx.db.read() as conn:
        total = conn.execute(
            select(func.coalesce(func.sum(p.amount_units), 0)).where(
                and_(
                    p.account_id == wallet,
                    p.reason == Reason.USAGE_CHANNEL_REVENUE.value,
                    p.created_at >= start,
                    p.created_at < end,
                )
            )
        ).scalar_one()
    return int(total)


calls = st.lists(
    st.tuples(
        st.integers(0, 2),  # which app
        st.sampled_from(list(RouteMode)),
        st.integers(0, 40_000),  # input tokens
        st.integers(0, 8_000),  # output tokens
        st.integers(0, 30),  # hours after T0
        st.sampled_from(["mock-small", "mock-large"]),
    ),
    max_size=12,
)


@settings(
    max_examples=10,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=calls, bounds=st.tuples(st.integers(-1, 31), st.integers(-1, 31)).map(sorted))
def test_earnings_totals_equal_the_channel_revenue_postings_of_the_window(
    ctx: ServiceContext, seeded: SeedResult, calls: list[tuple[int, RouteMode, int, int, int, str]], bounds: list[int]
) -> None:
    clock = Clock()
    ctx = replace(ctx, clock=clock)
    books = open_books(ctx)
    for app_index, route_mode, input_tokens, output_tokens, hour, model in calls:
        clock.now = T0 + timedelta(hours=hour)
        outcome = record_usage(
            ctx,
            UsageEvent(
                request_id=f"req-{uuid.uuid4()}",
                public_app_id=books.apps[app_index][0],
                external_user_id="user",
                feature_key="reply",
                route_mode=route_mode,
                provider="mock",
                model=model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
            ),
        )
        assert outcome.status == "recorded", outcome.error
    clock.now = T0 + timedelta(days=5)
    start, end = (T0 + timedelta(hours=h) for h in bounds)

    for developer_id in books.developers:
        mine = {public_app_id for public_app_id, owner in books.apps if owner == developer_id}
        counted = [call for call in calls if books.apps[call[0]][0] in mine and bounds[0] <= call[4] < bounds[1]]
        expected_keys = {
            EarningsGrouping.DAY: {(T0 + timedelta(hours=call[4])).date().isoformat() for call in counted},
            EarningsGrouping.APP: {books.apps[call[0]][0] for call in counted},
            EarningsGrouping.FEATURE: {"reply" for _ in counted},
            EarningsGrouping.MODEL: {f"mock/{call[5]}" for call in counted},
        }
        by_grouping = {
            grouping: developer_access.developer_earnings(ctx, developer_id, start=start, end=end, grouping=grouping)
            for grouping in EarningsGrouping
        }
        posted = channel_postings(ctx, developer_id, start, end)
        for grouping, earnings in by_grouping.items():
            assert earnings.totals.channel_revenue_units == posted, grouping
            assert earnings.totals.requests == len(counted), grouping
            assert [line.key for line in earnings.items] == sorted(expected_keys[grouping]), grouping
            assert sum(line.channel_revenue_units for line in earnings.items) == posted
            assert earnings.totals == by_grouping[EarningsGrouping.DAY].totals
