"""record_usage on SQLite and PostgreSQL: postings, idempotency, no overdraft, mixed batches."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, update

from modelfaucet.adapters.db.tables import audit_log, end_users, usage_events
from modelfaucet.domain.ledger import Reason
from modelfaucet.domain.money import parse_usd
from modelfaucet.domain.outcomes import (
    IdempotencyConflict,
    InsufficientBalance,
    InvalidRequest,
    NotFound,
)
from modelfaucet.domain.rating import RouteMode
from modelfaucet.services import catalog
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.posting_engine import PostingEngine
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.record_usage import record_usage, record_usage_batch
from modelfaucet.services.seed import DEMO_OPENING_UNITS, SeedResult

from .usage_support import balance, event, fund_end_user, posting_count, postings_of, usage_count

U = parse_usd
OPERATOR = Actor("alice")
# 1200 input × 0.50/M + 300 output × 1.50/M = 0.00105; markup 30 %, share 40 %.
DEMO = {"upstream": 105_000, "retail": 136_500, "channel": 12_600, "platform": 18_900}


def assert_reconciled(ctx: ServiceContext) -> None:
    report = reconcile_ledger(ctx)
    assert report.ok, report.as_dict()
    assert "usage_events_have_their_postings" in report.as_dict()["checks"]


def test_a_platform_call_posts_its_four_postings_and_the_usage_row(ctx: ServiceContext, seeded: SeedResult) -> None:
    outcome = record_usage(ctx, event("req-1"))
    assert outcome.status == "recorded"
    receipt = outcome.receipt
    assert receipt is not None
    assert receipt.retail_price_units == 136_500
    assert receipt.channel_revenue_units == 12_600
    assert receipt.end_user_balance_units == U("9.998635")
    assert receipt.transaction_id is not None
    assert postings_of(ctx, receipt.transaction_id) == [
        (seeded.end_user_wallet_id, -DEMO["retail"], Reason.USAGE_RETAIL_PRICE),
        (seeded.provider_cost_wallet_id, DEMO["upstream"], Reason.USAGE_PROVIDER_COST),
        (seeded.developer_wallet_id, DEMO["channel"], Reason.USAGE_CHANNEL_REVENUE),
        (seeded.platform_wallet_id, DEMO["platform"], Reason.USAGE_PLATFORM_REVENUE),
    ]
    assert balance(ctx, seeded.end_user_wallet_id) == DEMO_OPENING_UNITS - DEMO["retail"]
    assert balance(ctx, seeded.developer_wallet_id) == DEMO["channel"]
    assert balance(ctx, seeded.platform_wallet_id) == DEMO["platform"]
    assert balance(ctx, seeded.provider_cost_wallet_id) == DEMO["upstream"]
    with ctx.db.read() as conn:
        row = conn.execute(select(usage_events).where(usage_events.c.request_id == "req-1")).one()
        audit_rows = conn.execute(select(audit_log).where(audit_log.c.resource_type == "usage_event")).all()
    assert row.rating_snapshot["pricing"] == {
        "source": "feature",
        "feature_pricing_version": 1,
        "markup_bps": 3000,
        "channel_share_bps": 4000,
        "explicit_gateway_fee_units": 0,
    }
    assert row.rating_snapshot["model_price"]["version"] == 1
    assert audit_rows == []  # no audit row per usage event
    assert_reconciled(ctx)


def test_a_developer_key_call_credits_the_upstream_part_to_the_developer(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    outcome = record_usage(ctx, event("req-dk", route_mode=RouteMode.DEVELOPER_KEY))
    assert outcome.receipt is not None
    assert outcome.receipt.transaction_id is not None
    assert balance(ctx, seeded.developer_wallet_id) == DEMO["upstream"] + DEMO["channel"]
    assert balance(ctx, seeded.provider_cost_wallet_id) == 0
    reasons = {reason for _, _, reason in postings_of(ctx, outcome.receipt.transaction_id)}
    assert Reason.USAGE_PROVIDER_COST in reasons
    assert_reconciled(ctx)


def test_byok_posts_only_the_explicit_fee_whatever_the_markup(ctx: ServiceContext, seeded: SeedResult) -> None:
    catalog.put_feature(
        ctx,
        OPERATOR,
        public_app_id="app_pub_demo",
        feature_key="customer_reply",
        display_name="Customer reply",
        pricing=catalog.FeaturePricingInput(
            markup_bps=9000, channel_share_bps=4000, explicit_gateway_fee_units=U("0.01")
        ),
    )
    outcome = record_usage(ctx, event("req-byok", route_mode=RouteMode.BYOK, input_tokens=10**6))
    assert outcome.receipt is not None
    assert outcome.receipt.upstream_cost_units == 0
    assert outcome.receipt.retail_price_units == U("0.01")
    assert outcome.receipt.channel_revenue_units == U("0.004")
    assert balance(ctx, seeded.provider_cost_wallet_id) == 0
    assert_reconciled(ctx)


def test_a_price_change_applies_from_the_moment_it_is_made(ctx: ServiceContext, seeded: SeedResult) -> None:
    record_usage(ctx, event("before"))
    catalog.put_model_price(
        ctx,
        OPERATOR,
        provider="mock",
        model="mock-small",
        input_per_1m_units=U("1"),
        output_per_1m_units=U("3"),
        cached_per_1m_units=0,
    )
    after = record_usage(ctx, event("after"))
    assert after.receipt is not None
    assert after.receipt.upstream_cost_units == U("0.0021")
    with ctx.db.read() as conn:
        versions = dict(
            conn.execute(
                select(usage_events.c.request_id, usage_events.c.rating_snapshot).where(
                    usage_events.c.request_id.in_(["before", "after"])
                )
            ).all()
        )
    assert versions["before"]["model_price"]["version"] == 1
    assert versions["after"]["model_price"]["version"] == 2


def test_the_same_request_id_twice_posts_once(ctx: ServiceContext, seeded: SeedResult) -> None:
    first = record_usage(ctx, event("req-dup"))
    second = record_usage(ctx, event("req-dup"))
    assert (first.status, second.status) == ("recorded", "duplicate")
    assert second.receipt == first.receipt
    assert usage_count(ctx) == 1
    assert posting_count(ctx) == 4
    assert balance(ctx, seeded.end_user_wallet_id) == DEMO_OPENING_UNITS - DEMO["retail"]


def test_the_same_request_id_with_other_content_is_a_conflict_naming_the_fields(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    record_usage(ctx, event("req-c"))
    outcome = record_usage(ctx, event("req-c", output_tokens=301, model="mock-large"))
    assert isinstance(outcome.error, IdempotencyConflict)
    assert outcome.error.details["differing_fields"] == ["model", "output_tokens"]
    assert posting_count(ctx) == 4


@pytest.mark.parametrize("via_engine", [False, True], ids=["direct", "group_commit"])
def test_the_same_request_id_20_times_concurrently_posts_one_set(
    ctx: ServiceContext, seeded: SeedResult, via_engine: bool
) -> None:
    engine = PostingEngine(ctx)
    with ThreadPoolExecutor(max_workers=20) as pool:
        if via_engine:
            outcomes = [
                f.result(timeout=60)
                for f in [pool.submit(lambda: engine.submit(event("same")).result(60)) for _ in range(20)]
            ]
        else:
            outcomes = list(pool.map(lambda _: record_usage(ctx, event("same")), range(20)))
    assert sorted(o.status for o in outcomes).count("recorded") == 1
    assert {o.status for o in outcomes} == {"recorded", "duplicate"}
    assert usage_count(ctx) == 1
    assert posting_count(ctx) == 4
    assert balance(ctx, seeded.end_user_wallet_id) == DEMO_OPENING_UNITS - DEMO["retail"]
    assert_reconciled(ctx)


@pytest.mark.parametrize("via_engine", [False, True], ids=["direct", "group_commit"])
def test_40_concurrent_calls_against_a_wallet_that_affords_23_accept_exactly_23(
    ctx: ServiceContext, seeded: SeedResult, via_engine: bool
) -> None:
    price = U("0.43")
    catalog.put_feature(
        ctx,
        OPERATOR,
        public_app_id="app_pub_demo",
        feature_key="flat",
        display_name="Flat fee",
        pricing=catalog.FeaturePricingInput(explicit_gateway_fee_units=price),
    )
    wallet = fund_end_user(ctx, seeded, "buyer", 23 * price + price - 1)
    calls = [
        event(f"buy-{i}", external_user_id="buyer", feature_key="flat", route_mode=RouteMode.LOCAL) for i in range(40)
    ]
    engine = PostingEngine(ctx)
    with ThreadPoolExecutor(max_workers=40) as pool:
        if via_engine:
            outcomes = list(pool.map(lambda e: engine.submit(e).result(60), calls))
        else:
            outcomes = list(pool.map(lambda e: record_usage(ctx, e), calls))
    accepted = [o for o in outcomes if o.status == "recorded"]
    refused = [o for o in outcomes if o.status == "rejected"]
    assert len(accepted) == 23
    assert len(refused) == 17
    assert all(isinstance(o.error, InsufficientBalance) for o in refused)
    assert balance(ctx, wallet) == price - 1
    assert usage_count(ctx) == 23
    assert_reconciled(ctx)


def test_a_mixed_batch_gives_each_event_its_own_result_and_posts_only_the_valid(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    record_usage(ctx, event("old"))
    fund_end_user(ctx, seeded, "poor", 10)
    outcomes = record_usage_batch(
        ctx,
        [
            event("ok-1"),
            event("old"),  # duplicate of a stored event
            event("poor-1", external_user_id="poor"),  # cannot pay
            event("ok-2", route_mode=RouteMode.DEVELOPER_KEY),
            event("bad-model", model="no-such-model"),  # no price
            event("bad-app", public_app_id="app_nope"),
            event("ok-1"),  # repeated inside the batch
            event("old", input_tokens=1),  # conflict
            event("unknown-user", external_user_id="nobody"),  # no wallet, priced
        ],
    )
    assert [o.status for o in outcomes] == [
        "recorded",
        "duplicate",
        "rejected",
        "recorded",
        "rejected",
        "rejected",
        "duplicate",
        "rejected",
        "rejected",
    ]
    errors = [type(o.error) for o in outcomes]
    assert errors[2] is InsufficientBalance
    assert errors[4] is InvalidRequest
    assert errors[5] is NotFound
    assert errors[7] is IdempotencyConflict
    assert errors[8] is InsufficientBalance
    assert usage_count(ctx) == 3
    assert posting_count(ctx) == 12
    with ctx.db.read() as conn:
        assert conn.execute(select(end_users).where(end_users.c.app_id == seeded.app_id)).all().__len__() == 2
    assert_reconciled(ctx)


def test_a_free_call_of_an_unknown_end_user_creates_the_user_and_records_the_usage(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    outcome = record_usage(ctx, event("free", external_user_id="newcomer", route_mode=RouteMode.LOCAL))
    assert outcome.status == "recorded"
    assert outcome.receipt is not None
    assert outcome.receipt.transaction_id is None
    assert outcome.receipt.end_user_balance_units == 0
    assert_reconciled(ctx)


def test_reconciliation_names_a_usage_event_whose_postings_do_not_match(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    record_usage(ctx, event("tampered"))
    record_usage(ctx, event("fine"))
    with ctx.db.transaction() as conn:
        conn.execute(
            update(usage_events)
            .where(usage_events.c.request_id == "tampered")
            .values(channel_revenue_units=DEMO["channel"] + 1, platform_revenue_units=DEMO["platform"] - 1)
        )
    check = reconcile_ledger(ctx).as_dict()["checks"]["usage_events_have_their_postings"]
    assert check["ok"] is False
    assert [item["request_id"] for item in check["offending"]] == ["tampered"]
