"""seed_demo_data: the demo developer, app (and its secret key), feature, end user and wallets (SPEC §11).

Idempotent, in one unit of work: every row is ensured (created only when absent, by its
natural key), and the demo end user's opening balance is posted by the run that creates
that end user — exactly one run, even when two seed at once — so running it twice adds
nothing.

The demo app's secret key is fixed and obviously fake (:data:`DEMO_APP_SECRET_KEY`), so
every run can print it; like any key it is stored only as its hash. It exists for the demo
data only: revoke it (``DELETE /v1/admin/apps/app_pub_demo/secret-keys/{id}``) on any
database that is not a demo.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.audit import AuditEntry
from ..domain.catalog import DEFAULT_APP_MARKUP_BPS, CatalogStatus
from ..domain.identity import new_id, token_hash
from ..domain.ledger import (
    PLATFORM_OWNER_ID,
    PROVIDER_COST_OWNER_ID,
    OwnerScope,
    Reason,
    SystemAccount,
    Transaction,
)
from ..domain.money import UNITS_PER_USD
from .context import ServiceContext
from .repositories import AppRecord, AppSecretKeyRecord, DeveloperRecord, FeatureRecord, ModelPriceRecord
from .unit_of_work import UnitOfWork

DEMO_DEVELOPER_EMAIL = "dev@example.com"
DEMO_PUBLIC_APP_ID = "app_pub_demo"
DEMO_FEATURE_KEY = "customer_reply"
DEMO_EXTERNAL_USER_ID = "demo-user-1"
DEMO_OPENING_UNITS = 10 * UNITS_PER_USD
DEMO_REVENUE_SHARE_BPS = 4000
# Fixed so that every seed run can print it; shaped like a real key so it authenticates.
DEMO_APP_SECRET_KEY = "mf_app_sk_demo_00000000000000000000000000000000"  # noqa: S105 - public, fake
DEMO_APP_KEY_NAME = "demo (seed)"
OPENING_REFERENCE_TYPE = "seed"
OPENING_REFERENCE_ID = "demo_end_user_opening_balance"


@dataclass(frozen=True)
class SeedResult:
    developer_id: str
    app_id: str
    public_app_id: str
    app_secret_key: str
    feature_key: str
    end_user_id: str
    external_user_id: str
    end_user_wallet_id: str
    developer_wallet_id: str
    platform_wallet_id: str
    provider_cost_wallet_id: str
    created_opening_balance: bool


def seed_demo_data(ctx: ServiceContext) -> SeedResult:
    with ctx.unit_of_work() as uow:
        result = _seed(uow)
        uow.commit()
    return result


def _seed(uow: UnitOfWork) -> SeedResult:
    now = uow.now
    catalog = uow.catalog
    developer = catalog.ensure_developer(
        DeveloperRecord(new_id(), "Demo Developer", DEMO_DEVELOPER_EMAIL, CatalogStatus.ACTIVE, now)
    )
    app = catalog.ensure_app(
        AppRecord(
            id=new_id(),
            public_app_id=DEMO_PUBLIC_APP_ID,
            developer_id=developer.id,
            name="CRM Demo",
            status=CatalogStatus.ACTIVE,
            default_revenue_share_bps=DEMO_REVENUE_SHARE_BPS,
            default_markup_bps=DEFAULT_APP_MARKUP_BPS,
            created_at=now,
        )
    )
    catalog.add_secret_key(
        AppSecretKeyRecord(new_id(), app.id, DEMO_APP_KEY_NAME, now), key_hash=token_hash(DEMO_APP_SECRET_KEY)
    )
    catalog.ensure_feature(
        FeatureRecord(
            id=new_id(),
            app_id=app.id,
            feature_key=DEMO_FEATURE_KEY,
            display_name="Customer reply",
            markup_bps=DEFAULT_APP_MARKUP_BPS,
            channel_share_bps=DEMO_REVENUE_SHARE_BPS,
            explicit_gateway_fee_units=0,
            pricing_version=1,
            updated_at=now,
        )
    )
    catalog.ensure_model_price(
        ModelPriceRecord(
            id=new_id(),
            provider="mock",
            model="mock-small",
            input_per_1m_units=50_000_000,  # 0.50 USD per million input tokens
            output_per_1m_units=150_000_000,  # 1.50 USD per million output tokens
            cached_per_1m_units=5_000_000,
            version=1,
            updated_at=now,
        )
    )
    new_end_user_id = catalog.add_end_user(app.id, DEMO_EXTERNAL_USER_ID)
    end_user_id = new_end_user_id or catalog.ensure_end_user(app.id, DEMO_EXTERNAL_USER_ID)

    ledger = uow.ledger
    platform = ledger.ensure(OwnerScope.PLATFORM, PLATFORM_OWNER_ID)
    provider_cost = ledger.ensure(OwnerScope.PROVIDER_COST, PROVIDER_COST_OWNER_ID)
    developer_wallet = ledger.ensure(OwnerScope.DEVELOPER, developer.id)
    end_user_wallet = ledger.ensure(OwnerScope.END_USER, end_user_id)
    for system in SystemAccount:
        ledger.ensure(OwnerScope.SYSTEM, system.value)
    opening = new_end_user_id is not None
    if opening:
        _post_opening_balance(uow, end_user_wallet)
    return SeedResult(
        developer_id=developer.id,
        app_id=app.id,
        public_app_id=DEMO_PUBLIC_APP_ID,
        app_secret_key=DEMO_APP_SECRET_KEY,
        feature_key=DEMO_FEATURE_KEY,
        end_user_id=end_user_id,
        external_user_id=DEMO_EXTERNAL_USER_ID,
        end_user_wallet_id=end_user_wallet,
        developer_wallet_id=developer_wallet,
        platform_wallet_id=platform,
        provider_cost_wallet_id=provider_cost,
        created_opening_balance=opening,
    )


def _post_opening_balance(uow: UnitOfWork, end_user_wallet: str) -> None:
    """The demo end user's test credits: a credit of the wallet against seed equity."""
    equity = uow.ledger.ensure(OwnerScope.SYSTEM, SystemAccount.SEED_EQUITY.value)
    reason = Reason.SEED_OPENING_BALANCE.value
    uow.ledger.post(
        Transaction.transfer(
            reason,
            debit=equity,
            credit=end_user_wallet,
            amount_units=DEMO_OPENING_UNITS,
            reference_type=OPENING_REFERENCE_TYPE,
            reference_id=OPENING_REFERENCE_ID,
        )
    )
    uow.audit.add(
        AuditEntry(
            actor="seed",
            action="seed.opening_balance",
            resource_type="wallet",
            resource_id=end_user_wallet,
            amount_units=DEMO_OPENING_UNITS,
            note="demo end-user test credits",
        )
    )
