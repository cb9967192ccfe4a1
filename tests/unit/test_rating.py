"""Rating tables (SPEC §14): integer arithmetic, rounding down, parts always summing exactly."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelfaucet.domain.ledger import Reason
from modelfaucet.domain.money import MAX_UNITS, parse_usd
from modelfaucet.domain.outcomes import InvalidRequest
from modelfaucet.domain.rating import (
    MAX_TOKENS,
    DefaultPricing,
    FeaturePricing,
    ModelPrice,
    Pricing,
    RatedUsage,
    RouteMode,
    Usage,
    UsageAccounts,
    effective_pricing,
    format_markup_percent,
    parse_markup_percent,
    rate,
    rating_snapshot,
    usage_postings,
    usage_transaction,
)

U = parse_usd
# 1 USD per million tokens of every kind: one token costs 100 units.
ONE_USD = ModelPrice(U("1"), U("1"), U("1"))
DEMO = ModelPrice(U("0.5"), U("1.5"), U("0.05"))
ACCOUNTS = UsageAccounts(end_user="eu", developer="dev", platform="plat", provider_cost="prov")


def rated(upstream: str, retail: str, channel: str, platform: str, fee: str = "0") -> RatedUsage:
    return RatedUsage(U(upstream), U(retail), U(channel), U(platform), U(fee))


RATING_TABLE = [
    # (case, usage, pricing, price, expected)
    (
        "whitepaper: upstream 0.0100, markup 30 %, share 40 %",
        Usage(RouteMode.PLATFORM, reported_upstream_units=U("0.01")),
        Pricing(3000, 4000),
        None,
        rated("0.01", "0.013", "0.0012", "0.0018"),
    ),
    (
        "whitepaper from tokens: 10000 input tokens at 1 USD per million",
        Usage(RouteMode.PLATFORM, input_tokens=10_000),
        Pricing(3000, 4000),
        ONE_USD,
        rated("0.01", "0.013", "0.0012", "0.0018"),
    ),
    (
        "developer_key is priced exactly like platform",
        Usage(RouteMode.DEVELOPER_KEY, input_tokens=10_000),
        Pricing(3000, 4000),
        ONE_USD,
        rated("0.01", "0.013", "0.0012", "0.0018"),
    ),
    (
        "demo price: 1200 input + 300 output tokens",
        Usage(RouteMode.PLATFORM, input_tokens=1200, output_tokens=300),
        Pricing(3000, 4000),
        DEMO,
        # 1200*0.5 + 300*1.5 = 1050 µUSD = 0.00105; markup 0.000315; channel 0.000126
        rated("0.00105", "0.001365", "0.000126", "0.000189"),
    ),
    (
        "cached tokens are billed at the cached price",
        Usage(RouteMode.PLATFORM, input_tokens=0, output_tokens=0, cached_tokens=1_000_000),
        Pricing(0, 4000),
        DEMO,
        rated("0.05", "0.05", "0", "0"),
    ),
    (
        "zero tokens cost nothing",
        Usage(RouteMode.PLATFORM),
        Pricing(3000, 4000),
        DEMO,
        rated("0", "0", "0", "0"),
    ),
    (
        "share 0 bps: the whole margin to the platform",
        Usage(RouteMode.PLATFORM, reported_upstream_units=U("1")),
        Pricing(3000, 0),
        None,
        rated("1", "1.3", "0", "0.3"),
    ),
    (
        "share 10000 bps: the whole margin to the developer",
        Usage(RouteMode.PLATFORM, reported_upstream_units=U("1")),
        Pricing(3000, 10000),
        None,
        rated("1", "1.3", "0.3", "0"),
    ),
    (
        "markup 0 bps: retail equals upstream",
        Usage(RouteMode.PLATFORM, reported_upstream_units=U("2")),
        Pricing(0, 4000),
        None,
        rated("2", "2", "0", "0"),
    ),
    (
        "upstream rounds down once over all token kinds",
        # 1 token at 0.00000333 per 1M... 333 units * 1 / 1e6 = 0 ; 3003 tokens * 333 = 999999 → 0
        Usage(RouteMode.PLATFORM, input_tokens=3003),
        Pricing(3000, 4000),
        ModelPrice(333, 0, 0),
        rated("0", "0", "0", "0"),
    ),
    (
        "markup rounds down: 7 units at 30 % gives 2 units of margin",
        Usage(RouteMode.PLATFORM, reported_upstream_units=7),
        Pricing(3000, 4000),
        None,
        RatedUsage(7, 9, 0, 2, 0),
    ),
    (
        "share rounds down, the remainder goes to the platform",
        Usage(RouteMode.PLATFORM, reported_upstream_units=10),
        Pricing(3000, 3333),
        None,
        RatedUsage(10, 13, 0, 3, 0),
    ),
    (
        "fractional markup 12.5 %",
        Usage(RouteMode.PLATFORM, reported_upstream_units=U("1")),
        Pricing(1250, 5000),
        None,
        rated("1", "1.125", "0.0625", "0.0625"),
    ),
    (
        "huge token counts: a trillion output tokens at 1.50 per million",
        Usage(RouteMode.PLATFORM, output_tokens=MAX_TOKENS),
        Pricing(3000, 4000),
        DEMO,
        rated("1500000", "1950000", "180000", "270000"),
    ),
    (
        "byok: no markup, price is only the explicit fee split by the share",
        Usage(RouteMode.BYOK, input_tokens=10_000, output_tokens=5_000),
        Pricing(3000, 4000, explicit_gateway_fee_units=U("0.001")),
        DEMO,
        rated("0", "0.001", "0.0004", "0.0006", fee="0.001"),
    ),
    (
        "local without a fee is free",
        Usage(RouteMode.LOCAL, input_tokens=10_000),
        Pricing(3000, 4000),
        None,
        rated("0", "0", "0", "0"),
    ),
    (
        "byok ignores a reported upstream cost (not the platform's cost)",
        Usage(RouteMode.BYOK, reported_upstream_units=U("5")),
        Pricing(3000, 4000, explicit_gateway_fee_units=U("0.01")),
        None,
        rated("0", "0.01", "0.004", "0.006", fee="0.01"),
    ),
    (
        "the platform route ignores the explicit gateway fee",
        Usage(RouteMode.PLATFORM, reported_upstream_units=U("1")),
        Pricing(0, 4000, explicit_gateway_fee_units=U("0.5")),
        None,
        rated("1", "1", "0", "0"),
    ),
]


@pytest.mark.parametrize(
    ("usage", "pricing", "price", "expected"),
    [row[1:] for row in RATING_TABLE],
    ids=[row[0] for row in RATING_TABLE],
)
def test_rating_table(usage: Usage, pricing: Pricing, price: ModelPrice | None, expected: RatedUsage) -> None:
    result = rate(usage, pricing, price)
    assert result == expected
    parts = result.upstream_cost_units + result.channel_revenue_units + result.platform_revenue_units
    assert parts == result.retail_price_units


def test_the_whitepaper_margin_is_0_0030() -> None:
    result = rate(Usage(RouteMode.PLATFORM, reported_upstream_units=U("0.01")), Pricing(3000, 4000), None)
    assert result.margin_units == U("0.003")


def test_a_priced_route_without_a_model_price_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="no price"):
        rate(Usage(RouteMode.PLATFORM, input_tokens=1), Pricing(3000, 4000), None)


@pytest.mark.parametrize("field", ["input_tokens", "output_tokens", "cached_tokens"])
@pytest.mark.parametrize("bad", [-1, MAX_TOKENS + 1])
def test_token_counts_out_of_range_are_refused(field: str, bad: int) -> None:
    with pytest.raises(InvalidRequest):
        rate(Usage(RouteMode.PLATFORM, **{field: bad}), Pricing(0, 0), ONE_USD)  # type: ignore[arg-type]


def test_a_price_above_the_per_event_maximum_is_refused() -> None:
    expensive = ModelPrice(MAX_UNITS, 0, 0)
    with pytest.raises(InvalidRequest, match="maximum"):
        rate(Usage(RouteMode.PLATFORM, input_tokens=MAX_TOKENS), Pricing(3000, 4000), expensive)


@pytest.mark.parametrize(
    ("text", "bps"), [("30", 3000), ("12.5", 1250), ("0", 0), ("0.01", 1), ("1000", 100_000), ("7.25", 725)]
)
def test_markup_percent_parses_to_basis_points(text: str, bps: int) -> None:
    assert parse_markup_percent(text) == bps
    assert parse_markup_percent(format_markup_percent(bps)) == bps


@pytest.mark.parametrize("bad", [30, "30%", "-1", "1.005", "01", "1000.01", "", " 30", True, None])
def test_markup_percent_refuses_anything_but_a_small_decimal_string(bad: object) -> None:
    with pytest.raises(InvalidRequest):
        parse_markup_percent(bad)


@pytest.mark.parametrize(("markup", "share"), [(-1, 0), (100_001, 0), (0, -1), (0, 10_001)])
def test_pricing_out_of_range_is_refused(markup: int, share: int) -> None:
    with pytest.raises(InvalidRequest):
        Pricing(markup, share)


POSTING_TABLE = [
    (
        RouteMode.PLATFORM,
        [
            ("eu", -1300, Reason.USAGE_RETAIL_PRICE),
            ("prov", 1000, Reason.USAGE_PROVIDER_COST),
            ("dev", 120, Reason.USAGE_CHANNEL_REVENUE),
            ("plat", 180, Reason.USAGE_PLATFORM_REVENUE),
        ],
    ),
    (
        RouteMode.DEVELOPER_KEY,
        [
            ("eu", -1300, Reason.USAGE_RETAIL_PRICE),
            ("dev", 1000, Reason.USAGE_PROVIDER_COST),
            ("dev", 120, Reason.USAGE_CHANNEL_REVENUE),
            ("plat", 180, Reason.USAGE_PLATFORM_REVENUE),
        ],
    ),
]


@pytest.mark.parametrize(("mode", "expected"), POSTING_TABLE)
def test_usage_postings_follow_spec_section_5(mode: RouteMode, expected: list[tuple[str, int, Reason]]) -> None:
    postings = usage_postings(RatedUsage(1000, 1300, 120, 180, 0), mode, ACCOUNTS)
    assert [(p.account_id, p.amount_units, p.reason) for p in postings] == [(a, n, r.value) for a, n, r in expected]


def test_zero_legs_are_omitted_and_a_free_call_has_no_transaction() -> None:
    postings = usage_postings(RatedUsage(0, 10, 4, 6, 10), RouteMode.BYOK, ACCOUNTS)
    assert [p.reason for p in postings] == [
        Reason.USAGE_RETAIL_PRICE,
        Reason.USAGE_CHANNEL_REVENUE,
        Reason.USAGE_PLATFORM_REVENUE,
    ]
    assert usage_transaction(RatedUsage(0, 0, 0, 0, 0), RouteMode.LOCAL, ACCOUNTS, request_id="r") is None


pricings = st.builds(
    Pricing,
    markup_bps=st.integers(0, 100_000),
    channel_share_bps=st.integers(0, 10_000),
    explicit_gateway_fee_units=st.integers(0, 10**12),
)
prices = st.builds(
    ModelPrice,
    input_per_1m_units=st.integers(0, 10**11),
    output_per_1m_units=st.integers(0, 10**11),
    cached_per_1m_units=st.integers(0, 10**11),
)
tokens = st.integers(0, 10**9)


@given(
    pricing=pricings,
    price=st.one_of(st.none(), prices),
    mode=st.sampled_from([RouteMode.BYOK, RouteMode.LOCAL]),
    input_tokens=tokens,
    output_tokens=tokens,
    cached_tokens=tokens,
    reported=st.one_of(st.none(), st.integers(0, 10**12)),
)
def test_byok_and_local_never_carry_markup_for_any_pricing(
    *,
    pricing: Pricing,
    price: ModelPrice | None,
    mode: RouteMode,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int,
    reported: int | None,
) -> None:
    usage = Usage(mode, input_tokens, output_tokens, cached_tokens, reported_upstream_units=reported)
    result = rate(usage, pricing, price)
    assert result.upstream_cost_units == 0
    assert result.retail_price_units == pricing.explicit_gateway_fee_units == result.gateway_fee_units
    assert result.channel_revenue_units + result.platform_revenue_units == result.retail_price_units


@given(
    pricing=pricings,
    price=prices,
    mode=st.sampled_from([RouteMode.PLATFORM, RouteMode.DEVELOPER_KEY]),
    input_tokens=tokens,
    output_tokens=tokens,
    cached_tokens=tokens,
)
def test_priced_routes_always_add_up_exactly_and_round_down(
    *, pricing: Pricing, price: ModelPrice, mode: RouteMode, input_tokens: int, output_tokens: int, cached_tokens: int
) -> None:
    usage = Usage(mode, input_tokens, output_tokens, cached_tokens)
    try:
        result = rate(usage, pricing, price)
    except InvalidRequest:
        return  # beyond the per-event maximum
    # Exact rational arithmetic: a float here loses the last unit on large amounts.
    exact_upstream = Fraction(
        input_tokens * price.input_per_1m_units
        + output_tokens * price.output_per_1m_units
        + cached_tokens * price.cached_per_1m_units,
        1_000_000,
    )
    assert result.upstream_cost_units <= exact_upstream < result.upstream_cost_units + 1
    assert result.retail_price_units == (
        result.upstream_cost_units + result.channel_revenue_units + result.platform_revenue_units
    )
    assert result.margin_units * 10_000 <= result.upstream_cost_units * pricing.markup_bps
    assert result.channel_revenue_units * 10_000 <= result.margin_units * pricing.channel_share_bps
    assert result.gateway_fee_units == 0


APP_DEFAULTS = DefaultPricing(markup_bps=3000, channel_share_bps=4000)
REQUEST = {"public_app_id": "app_pub_demo", "model": "mock-small"}  # the fingerprint, as received


@pytest.mark.parametrize(
    ("feature", "expected"),
    [
        (FeaturePricing(1), Pricing(3000, 4000, 0)),
        (FeaturePricing(2, markup_bps=1250), Pricing(1250, 4000, 0)),
        (FeaturePricing(3, channel_share_bps=0), Pricing(3000, 0, 0)),
        (
            FeaturePricing(4, markup_bps=0, channel_share_bps=10_000, explicit_gateway_fee_units=7),
            Pricing(0, 10_000, 7),
        ),
        (FeaturePricing(5, explicit_gateway_fee_units=U("0.01")), Pricing(3000, 4000, U("0.01"))),
    ],
    ids=["no overrides", "own markup", "own share of zero", "everything its own", "only a fee"],
)
def test_a_feature_overrides_only_what_it_sets_and_the_app_defaults_fill_the_rest(
    feature: FeaturePricing, expected: Pricing
) -> None:
    assert effective_pricing(APP_DEFAULTS, feature) == expected


@pytest.mark.parametrize(
    ("usage", "price", "source", "model_price"),
    [
        (Usage(RouteMode.PLATFORM, 10), DEMO, "price_table", True),
        (Usage(RouteMode.DEVELOPER_KEY, 10, reported_upstream_units=5), None, "reported", False),
        (Usage(RouteMode.BYOK, 10), DEMO, "none", True),
        (Usage(RouteMode.LOCAL, 10, reported_upstream_units=5), None, "none", False),
    ],
)
def test_the_rating_snapshot_says_what_the_call_was_rated_with(
    usage: Usage, price: ModelPrice | None, source: str, model_price: bool
) -> None:
    feature = FeaturePricing(7, markup_bps=1250)
    snapshot = rating_snapshot(REQUEST, usage, effective_pricing(APP_DEFAULTS, feature), feature, price)
    assert snapshot == {
        "request": REQUEST,
        "pricing": {
            "source": "feature",
            "feature_pricing_version": 7,
            "markup_bps": 1250,
            "channel_share_bps": 4000,
            "explicit_gateway_fee_units": 0,
        },
        "model_price": {
            "version": 1,
            "input_per_1m_units": U("0.5"),
            "output_per_1m_units": U("1.5"),
            "cached_per_1m_units": U("0.05"),
        }
        if model_price
        else None,
        "upstream_source": source,
    }
