"""seed_demo_data: the demo developer, app, feature, end user and wallets (SPEC §11).

Idempotent: every row is looked up before it is created, and the opening balance is one
ledger transaction keyed by a fixed reference, so running it twice adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Table, select

from ..adapters.db import audit, ledger
from ..adapters.db.database import Database
from ..adapters.db.tables import app_features, apps, developers, end_users, ledger_transactions, model_prices
from ..domain.identity import external_user_hash, new_id
from ..domain.ledger import (
    PLATFORM_OWNER_ID,
    PROVIDER_COST_OWNER_ID,
    OwnerScope,
    Posting,
    Reason,
    SystemAccount,
    Transaction,
)
from ..domain.money import UNITS_PER_USD
from .context import ServiceContext

DEMO_DEVELOPER_EMAIL = "dev@example.com"
DEMO_PUBLIC_APP_ID = "app_pub_demo"
DEMO_FEATURE_KEY = "customer_reply"
DEMO_EXTERNAL_USER_ID = "demo-user-1"
DEMO_OPENING_UNITS = 10 * UNITS_PER_USD
_OPENING_REFERENCE = ("seed", "demo_end_user_opening_balance")


@dataclass(frozen=True)
class SeedResult:
    developer_id: str
    app_id: str
    public_app_id: str
    feature_key: str
    end_user_id: str
    external_user_id: str
    end_user_wallet_id: str
    developer_wallet_id: str
    platform_wallet_id: str
    provider_cost_wallet_id: str
    created_opening_balance: bool


def seed_demo_data(ctx: ServiceContext) -> SeedResult:
    now = ctx.clock()
    db = ctx.db
    with db.transaction() as conn:
        developer_id = _get_or_create(
            conn,
            db,
            developers,
            developers.c.email == DEMO_DEVELOPER_EMAIL,
            {"name": "Demo Developer", "email": DEMO_DEVELOPER_EMAIL, "status": "active", "created_at": now},
            conflict=["email"],
        )
        app_id = _get_or_create(
            conn,
            db,
            apps,
            apps.c.public_app_id == DEMO_PUBLIC_APP_ID,
            {
                "public_app_id": DEMO_PUBLIC_APP_ID,
                "developer_id": developer_id,
                "name": "CRM Demo",
                "status": "active",
                "default_revenue_share_bps": 4000,
                "default_markup_bps": 3000,
                "created_at": now,
            },
            conflict=["public_app_id"],
        )
        _get_or_create(
            conn,
            db,
            app_features,
            (app_features.c.app_id == app_id) & (app_features.c.feature_key == DEMO_FEATURE_KEY),
            {
                "app_id": app_id,
                "feature_key": DEMO_FEATURE_KEY,
                "display_name": "Customer reply",
                "markup_bps": 3000,
                "channel_share_bps": 4000,
                "explicit_gateway_fee_units": 0,
                "pricing_version": 1,
                "created_at": now,
                "updated_at": now,
            },
            conflict=["app_id", "feature_key"],
        )
        _get_or_create(
            conn,
            db,
            model_prices,
            (model_prices.c.provider == "mock") & (model_prices.c.model == "mock-small"),
            {
                "provider": "mock",
                "model": "mock-small",
                "input_per_1m_units": 50_000_000,  # 0.50 USD per million input tokens
                "output_per_1m_units": 150_000_000,  # 1.50 USD per million output tokens
                "cached_per_1m_units": 5_000_000,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            },
            conflict=["provider", "model"],
        )
        user_hash = external_user_hash(app_id, DEMO_EXTERNAL_USER_ID)
        end_user_id = _get_or_create(
            conn,
            db,
            end_users,
            (end_users.c.app_id == app_id) & (end_users.c.external_user_hash == user_hash),
            {"app_id": app_id, "external_user_hash": user_hash, "created_at": now},
            conflict=["app_id", "external_user_hash"],
        )

        def account(scope: OwnerScope, owner_id: str) -> str:
            return ledger.ensure_account(conn, db.insert, scope, owner_id, now=now)

        platform = account(OwnerScope.PLATFORM, PLATFORM_OWNER_ID)
        provider_cost = account(OwnerScope.PROVIDER_COST, PROVIDER_COST_OWNER_ID)
        developer_wallet = account(OwnerScope.DEVELOPER, developer_id)
        end_user_wallet = account(OwnerScope.END_USER, end_user_id)
        for system in SystemAccount:
            account(OwnerScope.SYSTEM, system.value)
        equity = account(OwnerScope.SYSTEM, SystemAccount.SEED_EQUITY.value)

        opened = conn.execute(
            select(ledger_transactions.c.id).where(
                (ledger_transactions.c.reference_type == _OPENING_REFERENCE[0])
                & (ledger_transactions.c.reference_id == _OPENING_REFERENCE[1])
            )
        ).first()
        if opened is None:
            reason = Reason.SEED_OPENING_BALANCE.value
            ledger.post(
                conn,
                Transaction.of(
                    reason,
                    [
                        Posting.credit(end_user_wallet, DEMO_OPENING_UNITS, reason),
                        Posting.debit(equity, DEMO_OPENING_UNITS, reason),
                    ],
                    reference_type=_OPENING_REFERENCE[0],
                    reference_id=_OPENING_REFERENCE[1],
                ),
                now=now,
            )
            audit.record(
                conn,
                now=now,
                actor="seed",
                action="seed.opening_balance",
                resource_type="wallet",
                resource_id=end_user_wallet,
                amount_units=DEMO_OPENING_UNITS,
                note="demo end-user test credits",
            )
    return SeedResult(
        developer_id=developer_id,
        app_id=app_id,
        public_app_id=DEMO_PUBLIC_APP_ID,
        feature_key=DEMO_FEATURE_KEY,
        end_user_id=end_user_id,
        external_user_id=DEMO_EXTERNAL_USER_ID,
        end_user_wallet_id=end_user_wallet,
        developer_wallet_id=developer_wallet,
        platform_wallet_id=platform,
        provider_cost_wallet_id=provider_cost,
        created_opening_balance=opened is None,
    )


def _get_or_create(
    conn: Connection,
    db: Database,
    table: Table,
    where: ColumnElement[bool],
    values: dict[str, object],
    *,
    conflict: list[str],
) -> str:
    existing = conn.execute(select(table.c.id).where(where)).scalar_one_or_none()
    if existing is not None:
        return str(existing)
    conn.execute(db.insert(table).values(id=new_id(), **values).on_conflict_do_nothing(index_elements=conflict))
    return str(conn.execute(select(table.c.id).where(where)).scalar_one())
