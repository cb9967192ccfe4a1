"""The developer portal's earnings page data on SQLite and PostgreSQL (SPEC §21).

Usage posted through the real ``record_usage`` on some days and not others: the chart has
one zero-filled line per UTC day of the window, its totals equal the developer's
``usage_channel_revenue`` postings of the window, every grouping adds up to them, the
balance is the developer's wallet at the same moment, and the second developer's usage
never shows on the first one's page (nor the other way round).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from modelfaucet.domain.rating import RouteMode
from modelfaucet.services import developer_access
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.developer_portal import developer_dashboard
from modelfaucet.services.record_usage import UsageEvent, record_usage
from modelfaucet.services.seed import SeedResult
from tests.integration.test_developer_earnings import T0, Clock, channel_postings, open_books

# (app index, hours after T0 = 2031-01-30 20:00 UTC): the first developer owns apps 0 and 1
CALLS = [(0, 1), (1, 3), (0, 26), (2, 27), (0, 75)]


def test_the_dashboard_charts_each_day_of_the_developers_own_usage_and_nothing_else(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    clock = Clock()
    ctx = replace(ctx, clock=clock)
    books = open_books(ctx)
    for app_index, hour in CALLS:
        clock.now = T0 + timedelta(hours=hour)
        outcome = record_usage(
            ctx,
            UsageEvent(
                request_id=f"req-{uuid.uuid4()}",
                public_app_id=books.apps[app_index][0],
                external_user_id="user",
                feature_key="reply",
                route_mode=RouteMode.PLATFORM,
                provider="mock",
                model="mock-large",
                input_tokens=20_000,
                output_tokens=4_000,
            ),
        )
        assert outcome.status == "recorded", outcome.error
    clock.now = T0 + timedelta(days=10)
    start = T0.replace(hour=0) - timedelta(days=1)  # 2031-01-29, a day before any usage
    end = start + timedelta(days=6)  # to 2031-02-04: the call at +75 h (2031-02-02 23:00) is inside
    first, second = books.developers

    board = developer_dashboard(ctx, first, start=start, end=end)
    assert [day.key for day in board.per_day] == [
        "2031-01-29",
        "2031-01-30",
        "2031-01-31",
        "2031-02-01",
        "2031-02-02",
        "2031-02-03",
    ]
    assert [day.requests for day in board.per_day] == [0, 2, 1, 0, 1, 0]  # 20:00+1h, +3h; +26h; +75h
    posted = channel_postings(ctx, first, start, end)
    assert posted > 0
    assert board.totals.channel_revenue_units == posted
    for grouping in (board.per_day, board.by_app, board.by_feature, board.by_model):
        assert sum(line.channel_revenue_units for line in grouping) == posted
        assert sum(line.requests for line in grouping) == 4
    assert [line.key for line in board.by_app] == sorted([books.apps[0][0], books.apps[1][0]])
    assert [line.key for line in board.by_model] == ["mock/mock-large"]
    assert board.balance == developer_access.developer_balance(ctx, first)
    assert board.balance.earned_units >= posted

    other = developer_dashboard(ctx, second, start=start, end=end)
    assert [line.key for line in other.by_app] == [books.apps[2][0]]
    assert [day.requests for day in other.per_day] == [0, 0, 1, 0, 0, 0]  # +27h = 2031-01-31 23:00
    assert other.totals.channel_revenue_units == channel_postings(ctx, second, start, end) > 0
    assert other.balance.wallet_id != board.balance.wallet_id
