"""The group-commit engine drains its queue on shutdown: nothing acknowledged is dropped."""

from __future__ import annotations

import pytest

from modelfaucet.domain.money import parse_usd
from modelfaucet.domain.outcomes import ServiceUnavailable
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.posting_engine import PostingEngine
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import SeedResult
from tests.integration.usage_support import event, fund_end_user, usage_count


def test_close_posts_everything_already_submitted_then_refuses_more(ctx: ServiceContext, seeded: SeedResult) -> None:
    fund_end_user(ctx, seeded, "drain-user", parse_usd("5"))
    engine = PostingEngine(ctx, max_wait_seconds=0.05)
    futures = engine.submit_many([event(f"drain-{i}", external_user_id="drain-user") for i in range(50)])
    engine.close()
    assert all(future.done() for future in futures)
    assert [future.result().status for future in futures] == ["recorded"] * 50
    assert usage_count(ctx) == 50
    with pytest.raises(ServiceUnavailable):
        engine.submit(event("after-close", external_user_id="drain-user"))
    assert reconcile_ledger(ctx).ok


def test_an_idle_engine_closes_at_once(ctx: ServiceContext) -> None:
    engine = PostingEngine(ctx)
    engine.close(timeout=1)
    with pytest.raises(ServiceUnavailable):
        engine.submit(event("never"))
