"""The developer portal's earnings page data (SPEC §21), on the in-memory unit of work.

One bar per UTC day of the window (zeros where nothing was used), the groupings add up to
the same totals, a window longer than a year is refused before anything is read, and a
developer sees only their own apps. The same service runs on SQLite and PostgreSQL in
``tests/integration/test_developer_dashboard.py``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from modelfaucet.config import Settings
from modelfaucet.domain.earnings import (
    MAX_SERIES_DAYS,
    SERIES_TOO_LONG,
    EarningsLine,
    daily_series,
    series_days,
)
from modelfaucet.domain.ledger import OwnerScope
from modelfaucet.domain.outcomes import InvalidRequest, NotFound
from modelfaucet.domain.windows import Window
from modelfaucet.services import developer_access
from modelfaucet.services.catalog import create_app, create_developer
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.developer_portal import DEFAULT_DAYS, dashboard_window, developer_dashboard
from tests.fakes.developers import UsageRow
from tests.fakes.memory import MemoryStore

OPERATOR = Actor("alice", request_id="req_test")
T0 = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2030, 3, day, hour, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(clock=Clock())


@pytest.fixture
def ctx(store: MemoryStore) -> ServiceContext:
    return ServiceContext(db=None, settings=Settings(database_url="sqlite://"), clock=Clock(), units=store)  # type: ignore[arg-type]


# --- the days of a chart ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (at(1), at(4), [date(2030, 3, 1), date(2030, 3, 2), date(2030, 3, 3)]),  # `to` at midnight: not that day
        (at(1, 23), at(2, 1), [date(2030, 3, 1), date(2030, 3, 2)]),  # two hours over midnight: two days
        (at(5, 6), at(5, 7), [date(2030, 3, 5)]),
        (at(5), at(5), []),  # an empty window draws nothing
    ],
)
def test_a_chart_has_every_utc_day_the_window_touches(start: datetime, end: datetime, expected: list[date]) -> None:
    assert series_days(Window(start, end)) == expected


def test_the_days_are_utc_days_whatever_zone_the_window_was_given_in() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    window = Window(at(2, 0).astimezone(tokyo), at(3, 0).astimezone(tokyo))  # 09:00 to 09:00 in Tokyo
    assert series_days(window) == [date(2030, 3, 2)]


def test_a_year_of_days_is_charted_and_one_more_is_refused() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    assert len(series_days(Window(start, start + timedelta(days=MAX_SERIES_DAYS)))) == MAX_SERIES_DAYS
    with pytest.raises(InvalidRequest) as refused:
        series_days(Window(start, start + timedelta(days=MAX_SERIES_DAYS, microseconds=1)))
    assert refused.value.message == SERIES_TOO_LONG
    assert refused.value.details == {"field": "from", "max_days": MAX_SERIES_DAYS}


def line(key: str, channel: int) -> EarningsLine:
    return EarningsLine(key, 1, 10, 5, 3 * channel, channel)


def test_days_without_usage_are_zeros_and_the_days_with_it_keep_their_lines() -> None:
    days = [date(2030, 3, 1), date(2030, 3, 2), date(2030, 3, 3)]
    series = daily_series([line("2030-03-02", 7)], days)
    assert series == (
        EarningsLine("2030-03-01", 0, 0, 0, 0, 0),
        line("2030-03-02", 7),
        EarningsLine("2030-03-03", 0, 0, 0, 0, 0),
    )


def test_a_line_outside_the_days_is_a_bug_not_silently_dropped() -> None:
    with pytest.raises(ValueError, match="2030-04-01"):
        daily_series([line("2030-04-01", 7)], [date(2030, 3, 1)])


def test_without_from_the_chart_shows_the_last_thirty_days_ending_with_the_day_of_to() -> None:
    assert dashboard_window(None, None, now=T0) == Window(at(10) - timedelta(days=DEFAULT_DAYS - 1), T0)
    # `to` at midnight ends the day before: thirty whole days, none of them the day of `to`
    window = dashboard_window(None, at(10), now=T0)
    assert window == Window(at(9) - timedelta(days=DEFAULT_DAYS - 1), at(10))
    assert len(series_days(window)) == DEFAULT_DAYS


def test_a_dashboard_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        dashboard_window(at(5), at(4), now=T0)


# --- the dashboard: one developer's money, one moment ----------------------------------------------


def developer(ctx: ServiceContext, email: str) -> str:
    return create_developer(ctx, OPERATOR, name="Dev", email=email).developer.id


def usage(app_id: str, public_app_id: str, when: datetime, channel: int, *, model: str = "m") -> UsageRow:
    return UsageRow(app_id, public_app_id, "reply", "mock", model, 100, 10, 3 * channel, channel, when)


@pytest.fixture
def two_developers(store: MemoryStore, ctx: ServiceContext) -> tuple[str, str]:
    alice, bob = developer(ctx, "alice@example.com"), developer(ctx, "bob@example.com")
    a1 = create_app(ctx, OPERATOR, developer_id=alice, public_app_id="a1", name="A1", default_revenue_share_bps=5000)
    a2 = create_app(ctx, OPERATOR, developer_id=alice, public_app_id="a2", name="A2", default_revenue_share_bps=5000)
    b1 = create_app(ctx, OPERATOR, developer_id=bob, public_app_id="b1", name="B1", default_revenue_share_bps=5000)
    store.state.developer_access.usage.extend(
        [
            usage(a1.app.id, "a1", at(2, 3), 10),
            usage(a1.app.id, "a1", at(2, 23), 20, model="n"),
            usage(a2.app.id, "a2", at(4, 1), 40),
            usage(b1.app.id, "b1", at(3), 1000),
            usage(a1.app.id, "a1", at(5), 5000),  # exactly at `to`: the next window's
        ]
    )
    return alice, bob


def test_the_dashboard_charts_every_day_and_its_groupings_add_up_to_the_same_totals(
    ctx: ServiceContext, two_developers: tuple[str, str]
) -> None:
    alice, _ = two_developers
    board = developer_dashboard(ctx, alice, start=at(1), end=at(5))
    assert [(day.key, day.requests, day.channel_revenue_units) for day in board.per_day] == [
        ("2030-03-01", 0, 0),
        ("2030-03-02", 2, 30),
        ("2030-03-03", 0, 0),
        ("2030-03-04", 1, 40),
    ]
    assert [(g.key, g.channel_revenue_units) for g in board.by_app] == [("a1", 30), ("a2", 40)]
    assert [(g.key, g.channel_revenue_units) for g in board.by_feature] == [("reply", 70)]
    assert [(g.key, g.channel_revenue_units) for g in board.by_model] == [("mock/m", 50), ("mock/n", 20)]
    assert (board.totals.requests, board.totals.channel_revenue_units, board.totals.retail_units) == (3, 70, 210)
    assert board.window == Window(at(1), at(5))
    assert [day.isoformat() for day in board.days] == [line.key for line in board.per_day]
    assert board.balance == developer_access.developer_balance(ctx, alice)


def test_another_developers_usage_never_reaches_the_dashboard(
    store: MemoryStore, ctx: ServiceContext, two_developers: tuple[str, str]
) -> None:
    alice, bob = two_developers
    board = developer_dashboard(ctx, bob, start=at(1), end=at(5))
    assert [g.key for g in board.by_app] == ["b1"]
    assert board.totals.channel_revenue_units == 1000
    assert [day.channel_revenue_units for day in board.per_day] == [0, 0, 1000, 0]
    with store() as uow:
        bobs_wallet = uow.ledger.id_for(OwnerScope.DEVELOPER, bob)
    assert board.balance.wallet_id == bobs_wallet != developer_dashboard(ctx, alice).balance.wallet_id


def test_a_developer_without_apps_sees_a_chart_of_zeros(ctx: ServiceContext) -> None:
    carol = developer(ctx, "carol@example.com")
    board = developer_dashboard(ctx, carol, start=at(1), end=at(3))
    assert [day.channel_revenue_units for day in board.per_day] == [0, 0]
    assert (board.by_app, board.by_feature, board.by_model, board.totals.requests) == ((), (), (), 0)


def test_an_unknown_developer_is_not_found(ctx: ServiceContext) -> None:
    with pytest.raises(NotFound):
        developer_dashboard(ctx, "no-such-developer", start=at(1), end=at(3))


def test_more_than_a_year_is_refused(ctx: ServiceContext, two_developers: tuple[str, str]) -> None:
    alice, _ = two_developers
    with pytest.raises(InvalidRequest) as refused:
        developer_dashboard(ctx, alice, start=at(1) - timedelta(days=MAX_SERIES_DAYS), end=at(2))
    assert refused.value.message == SERIES_TOO_LONG
