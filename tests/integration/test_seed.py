"""Seed data (SPEC §11): idempotent, and reconciliation is balanced on a fresh seed."""

from __future__ import annotations

from sqlalchemy import func, select

from modelfaucet.adapters.db.tables import (
    accounts,
    app_features,
    app_secret_keys,
    apps,
    audit_log,
    developers,
    end_users,
    ledger_postings,
    ledger_transactions,
)
from modelfaucet.domain.identity import token_hash
from modelfaucet.domain.ledger import Reason
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import DEMO_APP_SECRET_KEY, seed_demo_data
from modelfaucet.services.sessions import create_session

TABLES = [
    developers,
    apps,
    app_secret_keys,
    app_features,
    end_users,
    accounts,
    ledger_transactions,
    ledger_postings,
    audit_log,
]


def _counts(ctx: ServiceContext) -> dict[str, int]:
    with ctx.db.read() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES}


def test_seeding_twice_adds_nothing_the_second_time(ctx: ServiceContext) -> None:
    first = seed_demo_data(ctx)
    counts = _counts(ctx)
    second = seed_demo_data(ctx)
    assert first.created_opening_balance is True
    assert second.created_opening_balance is False
    assert second == first.__class__(**{**vars(first), "created_opening_balance": False})
    assert _counts(ctx) == counts
    assert counts["app_secret_keys"] == 1


def test_fresh_seed_reconciles_with_the_end_users_ten_dollars(ctx: ServiceContext) -> None:
    seeded = seed_demo_data(ctx)
    report = reconcile_ledger(ctx).as_dict()
    assert report["summary"] == {"wallet_count": 4, "balanced_count": 4, "mismatch_count": 0}
    assert report["ok"] is True
    by_wallet = {item["wallet_id"]: item for item in report["items"]}
    end_user = by_wallet[seeded.end_user_wallet_id]
    assert end_user["wallet_balance_usd"] == "10.00000000"
    assert end_user["ledger_balance_usd"] == "10.00000000"
    assert end_user["owner_scope"] == "end_user"
    with ctx.db.read() as conn:
        reasons = conn.execute(select(ledger_postings.c.reason).distinct()).scalars().all()
    assert reasons == [Reason.SEED_OPENING_BALANCE.value]


def test_the_seeds_demo_key_opens_sessions_for_the_demo_app(ctx: ServiceContext) -> None:
    seeded = seed_demo_data(ctx)
    seed_demo_data(ctx)
    created = create_session(
        ctx,
        secret_key=seeded.app_secret_key,
        public_app_id=seeded.public_app_id,
        external_user_id=seeded.external_user_id,
    )
    assert created.user.account_id == seeded.end_user_wallet_id
    with ctx.db.read() as conn:
        stored = conn.execute(select(app_secret_keys.c.key_hash, app_secret_keys.c.revoked_at)).all()
    assert [(row.key_hash, row.revoked_at) for row in stored] == [(token_hash(DEMO_APP_SECRET_KEY), None)]
