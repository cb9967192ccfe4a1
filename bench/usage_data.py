"""Shared data for the usage scenarios (B1–B4): the demo catalogue plus funded end users.

Every event rates the same way (1200 input + 300 output tokens of ``mock/mock-small`` for
``customer_reply``), so the plain-SQL baselines can write exactly the rows the posting
engine writes without rating anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import accounts, end_users
from modelfaucet.config import Settings
from modelfaucet.domain.audit import AuditEntry
from modelfaucet.domain.identity import external_user_hash, new_id
from modelfaucet.domain.ledger import OwnerScope, Reason, SystemAccount, Transaction
from modelfaucet.domain.money import UNITS_PER_USD
from modelfaucet.domain.rating import ModelPrice, Pricing, RatedUsage, RouteMode, Usage, rate
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.record_usage import UsageEvent
from modelfaucet.services.seed import SeedResult, seed_demo_data

USERS = 1_000
OPENING_UNITS = 1_000 * UNITS_PER_USD  # enough for ~700k events each: nobody runs dry
INPUT_TOKENS = 1200
OUTPUT_TOKENS = 300


@dataclass(frozen=True)
class UsageWorld:
    url: str
    seeded: SeedResult
    user_wallets: list[str]  # index n is the wallet of external user bench-n
    user_ids: list[str]
    rated: RatedUsage


def external_user(n: int) -> str:
    return f"bench-{n % USERS}"


def event(tag: str, n: int) -> UsageEvent:
    return UsageEvent(
        request_id=f"{tag}-{n}",
        public_app_id="app_pub_demo",
        external_user_id=external_user(n),
        feature_key="customer_reply",
        route_mode=RouteMode.PLATFORM,
        provider="mock",
        model="mock-small",
        input_tokens=INPUT_TOKENS,
        output_tokens=OUTPUT_TOKENS,
    )


def event_json(tag: str, n: int) -> dict[str, Any]:
    return {
        "request_id": f"{tag}-{n}",
        "public_app_id": "app_pub_demo",
        "external_user_id": external_user(n),
        "feature_key": "customer_reply",
        "route_mode": "platform",
        "provider": "mock",
        "model": "mock-small",
        "input_tokens": INPUT_TOKENS,
        "output_tokens": OUTPUT_TOKENS,
        "cached_tokens": 0,
    }


def prepare(url: str, *, users: int = USERS) -> UsageWorld:
    """Seed the demo data and ``users`` funded end users of the demo app (one transaction)."""
    db = Database.from_url(url)
    ctx = ServiceContext(db=db, settings=Settings(database_url=url))
    seeded = seed_demo_data(ctx)
    now = ctx.clock()
    user_ids = [new_id() for _ in range(users)]
    wallets = [new_id() for _ in range(users)]
    with db.transaction() as conn:
        conn.execute(
            insert(end_users),
            [
                {
                    "id": uid,
                    "app_id": seeded.app_id,
                    "external_user_hash": external_user_hash(seeded.app_id, f"bench-{n}"),
                    "created_at": now,
                }
                for n, uid in enumerate(user_ids)
            ],
        )
        conn.execute(
            insert(accounts),
            [
                {
                    "id": wallet,
                    "owner_scope": OwnerScope.END_USER.value,
                    "owner_id": uid,
                    "balance_units": 0,
                    "reserved_units": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for wallet, uid in zip(wallets, user_ids, strict=True)
            ],
        )
    # Each wallet's opening balance is a seed opening of its own, with its audit row, as the
    # seed writes one: the ledger then reconciles, provenance checks included.
    with ctx.unit_of_work() as uow:
        equity = uow.ledger.ensure(OwnerScope.SYSTEM, SystemAccount.SEED_EQUITY.value)
        reason = Reason.SEED_OPENING_BALANCE.value
        uow.ledger.post_many(
            [
                Transaction.transfer(
                    reason,
                    debit=equity,
                    credit=wallet,
                    amount_units=OPENING_UNITS,
                    reference_type="seed",
                    reference_id=f"bench_opening_{n}",
                )
                for n, wallet in enumerate(wallets)
            ]
        )
        for wallet in wallets:
            uow.audit.add(
                AuditEntry(
                    actor="seed",
                    action="seed.opening_balance",
                    resource_type="wallet",
                    resource_id=wallet,
                    amount_units=OPENING_UNITS,
                )
            )
        uow.commit()
    db.dispose()
    rated = rate(
        Usage(RouteMode.PLATFORM, INPUT_TOKENS, OUTPUT_TOKENS, 0),
        Pricing(3000, 4000, 0),
        ModelPrice(50_000_000, 150_000_000, 5_000_000),
    )
    return UsageWorld(url, seeded, wallets, user_ids, rated)


def snapshot_json(world: UsageWorld, n: int, balance_after: int) -> str:
    """A rating snapshot of the size the engine stores (the baselines write it too)."""
    return json.dumps(
        {
            "request": event_json("x", n) | {"external_user_id": "0" * 64, "upstream_cost_usd": None},
            "pricing": {
                "source": "feature",
                "feature_pricing_version": 1,
                "markup_bps": 3000,
                "channel_share_bps": 4000,
                "explicit_gateway_fee_units": 0,
            },
            "model_price": {
                "version": 1,
                "input_per_1m_units": 50_000_000,
                "output_per_1m_units": 150_000_000,
                "cached_per_1m_units": 5_000_000,
            },
            "upstream_source": "price_table",
            "end_user_wallet_id": world.user_wallets[n % len(world.user_wallets)],
            "end_user_balance_after_units": balance_after,
        }
    )
