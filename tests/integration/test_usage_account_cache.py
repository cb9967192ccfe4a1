"""The posting engine's cache of account ids never remembers an uncommitted account."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from modelfaucet.adapters.db.repositories import usage as usage_repository
from modelfaucet.adapters.db.tables import accounts, developers
from modelfaucet.domain.ledger import OwnerScope
from modelfaucet.domain.money import parse_usd
from modelfaucet.services import catalog, record_usage
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import SeedResult
from tests.integration.usage_support import event, fund_end_user


class _UniqueViolation(Exception):
    """What the driver raises for a request_id another transaction stored first."""

    sqlstate = "23505"


def test_a_batch_that_rolls_back_after_creating_an_account_leaves_no_stale_id(
    ctx: ServiceContext, seeded: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A developer whose wallet does not exist yet: the first usage batch creates it.
    developer = catalog.create_developer(ctx, Actor("test"), name="Cache Dev", email="cache@example.com").developer
    app = catalog.create_app(
        ctx,
        Actor("test"),
        developer_id=developer.id,
        public_app_id="app_pub_cache",
        name="Cache App",
        default_revenue_share_bps=4000,
    ).app
    catalog.put_feature(
        ctx,
        Actor("test"),
        public_app_id="app_pub_cache",
        feature_key="customer_reply",
        display_name="Customer reply",
        pricing=catalog.FeaturePricingInput(),
    )
    with ctx.db.transaction() as conn:
        conn.execute(accounts.delete().where(accounts.c.owner_id == developer.id))
        assert conn.execute(select(developers.c.id).where(developers.c.id == developer.id)).first()
    fund_end_user(ctx, replace(seeded, app_id=app.id), "cache-user", parse_usd("1"))
    cache = record_usage.AccountIds()
    real_insert_many = usage_repository.insert_many
    calls = {"n": 0}

    def fail_first_batch(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:  # as if another process committed the same request_id first
            raise IntegrityError("INSERT usage_events", {}, _UniqueViolation("duplicate request_id"))
        real_insert_many(*args, **kwargs)

    monkeypatch.setattr(usage_repository, "insert_many", fail_first_batch)
    [outcome] = record_usage.record_usage_batch(
        ctx,
        [event("cache-1", public_app_id="app_pub_cache", external_user_id="cache-user")],
        account_ids=cache,
    )
    assert outcome.status == "recorded", outcome.error  # the retry after the rollback
    # Whatever the outcome, the cache must hold only ids of rows that exist now.
    with ctx.db.read() as conn:
        existing = set(conn.execute(select(accounts.c.id)).scalars())
    remembered = {
        cache.get((scope.value, owner))
        for scope, owner in [
            (OwnerScope.DEVELOPER, developer.id),
            (OwnerScope.PLATFORM, "platform"),
            (OwnerScope.PROVIDER_COST, "provider_cost"),
        ]
    } - {None}
    assert remembered <= existing
    # And the next batch posts normally.
    [second] = record_usage.record_usage_batch(
        ctx,
        [event("cache-2", public_app_id="app_pub_cache", external_user_id="cache-user")],
        account_ids=cache,
    )
    assert second.status == "recorded", second.error
    assert reconcile_ledger(ctx).ok


def test_known_end_users_are_not_looked_up_again_and_a_rolled_back_new_user_is_not_remembered(
    ctx: ServiceContext, seeded: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    wallet = fund_end_user(ctx, seeded, "known-user", parse_usd("1"))
    known = record_usage.EndUserWallets()
    [first] = record_usage.record_usage_batch(ctx, [event("known-1", external_user_id="known-user")], end_users=known)
    assert first.status == "recorded", first.error
    cached = known.get((seeded.app_id, "known-user"))
    assert cached is not None and cached[1] == wallet  # read back: remembered
    with ctx.db.read() as conn:
        owner = conn.execute(select(accounts.c.owner_id).where(accounts.c.id == wallet)).scalar_one()
    assert cached[0] == owner

    # The next batch takes the user and wallet from the cache: no end-user query at all.
    lookups: list[object] = []
    real_lookup = usage_repository.SqlUsage.end_user_wallets

    def counting(self: usage_repository.SqlUsage, keys: Any) -> Any:
        lookups.append(keys)
        return real_lookup(self, keys)

    monkeypatch.setattr(usage_repository.SqlUsage, "end_user_wallets", counting)
    [second] = record_usage.record_usage_batch(ctx, [event("known-2", external_user_id="known-user")], end_users=known)
    assert second.status == "recorded" and second.receipt is not None
    assert second.receipt.end_user_wallet_id == wallet
    assert lookups == []

    # A free call creates a new end user and wallet in the batch; the batch rolls back once
    # (as if another process stored the request id first): nothing uncommitted is remembered.
    real_insert_many = usage_repository.insert_many
    calls = {"n": 0}

    def fail_first_batch(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise IntegrityError("INSERT usage_events", {}, _UniqueViolation("duplicate request_id"))
        real_insert_many(*args, **kwargs)

    monkeypatch.setattr(usage_repository, "insert_many", fail_first_batch)
    free = event("new-free-1", external_user_id="brand-new-user", input_tokens=0, output_tokens=0)
    [third] = record_usage.record_usage_batch(ctx, [free], end_users=known)
    assert third.status == "recorded", third.error
    assert known.get((seeded.app_id, "brand-new-user")) is None
    assert reconcile_ledger(ctx).ok
