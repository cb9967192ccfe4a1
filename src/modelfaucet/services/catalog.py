"""The catalog operators manage (SPEC §15): developers, apps, features with pricing, model prices.

One public function per operation, each running in one unit of work and declaring one
audit entry naming the operator. A price or pricing change applies from the moment it
commits: each row carries a version that every usage event records in its rating snapshot.

:func:`require_app` and :func:`require_developer` are the one place the "was not found"
refusals of the catalog are made; the other services of apps and developers use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..domain.audit import AuditEntry
from ..domain.catalog import (
    APP_NOT_FOUND,
    DEFAULT_APP_MARKUP_BPS,
    DEVELOPER_NOT_FOUND,
    CatalogStatus,
    check_model_name,
    check_public_key,
)
from ..domain.identity import new_id
from ..domain.ledger import OwnerScope
from ..domain.outcomes import InvalidState, NotFound
from .context import Actor, ServiceContext
from .repositories import AppRecord, DeveloperRecord, FeatureRecord, ModelPriceRecord
from .unit_of_work import UnitOfWork

DEVELOPER_EMAIL_TAKEN = "A developer with this email already exists."
PUBLIC_APP_ID_TAKEN = "An app with this public_app_id already exists."


@dataclass(frozen=True)
class FeaturePricingInput:
    """``None`` means "use the app's default" (markup, share) or 0 (fee)."""

    markup_bps: int | None = None
    channel_share_bps: int | None = None
    explicit_gateway_fee_units: int = 0


@dataclass(frozen=True, slots=True)
class DeveloperCreated:
    developer: DeveloperRecord
    wallet_id: str


@dataclass(frozen=True, slots=True)
class AppCreated:
    app: AppRecord
    developer_wallet_id: str


@dataclass(frozen=True, slots=True)
class FeaturePut:
    public_app_id: str
    feature: FeatureRecord


def require_app(uow: UnitOfWork, public_app_id: str) -> AppRecord:
    app = uow.catalog.get_app(public_app_id)
    if app is None:
        raise NotFound(APP_NOT_FOUND, details={"public_app_id": public_app_id})
    return app


def require_developer(uow: UnitOfWork, developer_id: str, *, details: dict[str, Any] | None = None) -> DeveloperRecord:
    developer = uow.catalog.get_developer(developer_id)
    if developer is None:
        raise NotFound(DEVELOPER_NOT_FOUND, details=details or {"developer_id": developer_id})
    return developer


def create_developer(ctx: ServiceContext, actor: Actor, *, name: str, email: str) -> DeveloperCreated:
    email = email.strip().lower()
    with ctx.unit_of_work() as uow:
        proposed = DeveloperRecord(new_id(), name, email, CatalogStatus.ACTIVE, uow.now)
        developer = uow.catalog.ensure_developer(proposed)
        if developer.id != proposed.id:
            raise InvalidState(DEVELOPER_EMAIL_TAKEN, details={"field": "email"})
        wallet_id = uow.ledger.ensure(OwnerScope.DEVELOPER, developer.id)
        uow.audit.add(
            AuditEntry(
                actor=actor.name,
                action="developer.create",
                resource_type="developer",
                resource_id=developer.id,
                after_status=str(developer.status),
                request_id=actor.request_id,
                details={"email": email},
            )
        )
        uow.commit()
    return DeveloperCreated(developer, wallet_id)


def create_app(
    ctx: ServiceContext,
    actor: Actor,
    *,
    developer_id: str,
    public_app_id: str,
    name: str,
    default_revenue_share_bps: int,
    default_markup_bps: int = DEFAULT_APP_MARKUP_BPS,
) -> AppCreated:
    check_public_key(public_app_id, "public_app_id")
    with ctx.unit_of_work() as uow:
        require_developer(uow, developer_id)
        proposed = AppRecord(
            id=new_id(),
            public_app_id=public_app_id,
            developer_id=developer_id,
            name=name,
            status=CatalogStatus.ACTIVE,
            default_revenue_share_bps=default_revenue_share_bps,
            default_markup_bps=default_markup_bps,
            created_at=uow.now,
        )
        app = uow.catalog.ensure_app(proposed)
        if app.id != proposed.id:
            raise InvalidState(PUBLIC_APP_ID_TAKEN, details={"field": "public_app_id"})
        wallet_id = uow.ledger.ensure(OwnerScope.DEVELOPER, developer_id)
        uow.audit.add(
            AuditEntry(
                actor=actor.name,
                action="app.create",
                resource_type="app",
                resource_id=public_app_id,
                after_status=str(app.status),
                request_id=actor.request_id,
                details={
                    "developer_id": developer_id,
                    "default_revenue_share_bps": default_revenue_share_bps,
                    "default_markup_bps": default_markup_bps,
                },
            )
        )
        uow.commit()
    return AppCreated(app, wallet_id)


def put_feature(
    ctx: ServiceContext,
    actor: Actor,
    *,
    public_app_id: str,
    feature_key: str,
    display_name: str,
    pricing: FeaturePricingInput,
) -> FeaturePut:
    check_public_key(feature_key, "feature_key")
    with ctx.unit_of_work() as uow:
        app = require_app(uow, public_app_id)
        feature = uow.catalog.put_feature(
            app.id,
            feature_key,
            display_name=display_name,
            markup_bps=pricing.markup_bps,
            channel_share_bps=pricing.channel_share_bps,
            explicit_gateway_fee_units=pricing.explicit_gateway_fee_units,
        )
        uow.audit.add(
            AuditEntry(
                actor=actor.name,
                action="feature.put",
                resource_type="app_feature",
                resource_id=f"{public_app_id}/{feature_key}",
                request_id=actor.request_id,
                details={
                    "pricing_version": feature.pricing_version,
                    "markup_bps": pricing.markup_bps,
                    "channel_share_bps": pricing.channel_share_bps,
                    "explicit_gateway_fee_units": pricing.explicit_gateway_fee_units,
                },
            )
        )
        uow.commit()
    return FeaturePut(public_app_id, feature)


def put_model_price(
    ctx: ServiceContext,
    actor: Actor,
    *,
    provider: str,
    model: str,
    input_per_1m_units: int,
    output_per_1m_units: int,
    cached_per_1m_units: int,
) -> ModelPriceRecord:
    check_public_key(provider, "provider")
    check_model_name(model)
    with ctx.unit_of_work() as uow:
        price = uow.catalog.put_model_price(
            provider,
            model,
            input_per_1m_units=input_per_1m_units,
            output_per_1m_units=output_per_1m_units,
            cached_per_1m_units=cached_per_1m_units,
        )
        uow.audit.add(
            AuditEntry(
                actor=actor.name,
                action="model_price.put",
                resource_type="model_price",
                resource_id=f"{provider}/{model}",
                request_id=actor.request_id,
                details={
                    "version": price.version,
                    "input_per_1m_units": input_per_1m_units,
                    "output_per_1m_units": output_per_1m_units,
                    "cached_per_1m_units": cached_per_1m_units,
                },
            )
        )
        uow.commit()
    return price
