"""Admin: developers, apps, features with pricing, model prices (SPEC §15)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from ...domain.catalog import DEFAULT_APP_MARKUP_BPS
from ...domain.money import format_usd
from ...domain.rating import format_markup_percent, parse_markup_percent
from ...domain.timestamps import iso
from ...services import catalog
from ...services.repositories import ModelPriceRecord
from ..deps import AdminActor, Context
from ..schemas import StrictModel, UsdString, UsdUnits, error_responses, parse_uuid

router = APIRouter(tags=["catalog"])

Name = Annotated[str, Field(min_length=1, max_length=200)]
ShareBps = Annotated[int, Field(strict=True, ge=0, le=10_000)]


class DeveloperIn(StrictModel):
    name: Name
    email: Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class DeveloperOut(BaseModel):
    id: str
    name: str
    email: str
    status: str
    wallet_id: str
    created_at: str


class AppIn(StrictModel):
    developer_id: str
    public_app_id: Annotated[str, Field(min_length=1, max_length=64)]
    name: Name
    default_revenue_share_bps: ShareBps
    default_markup_percent: Annotated[str | None, Field(examples=["30"])] = None


class AppOut(BaseModel):
    id: str
    public_app_id: str
    developer_id: str
    name: str
    status: str
    default_revenue_share_bps: int
    default_markup_percent: str
    developer_wallet_id: str
    created_at: str


class PricingIn(StrictModel):
    markup_percent: Annotated[
        str | None, Field(description='Decimal percent string, e.g. "30" or "12.5"; null = app default.')
    ] = None
    channel_share_bps: ShareBps | None = None
    explicit_gateway_fee_usd: UsdUnits = 0


class FeatureIn(StrictModel):
    display_name: Name
    pricing: PricingIn = Field(default_factory=PricingIn)


class PricingOut(BaseModel):
    markup_percent: str | None
    channel_share_bps: int | None
    explicit_gateway_fee_usd: UsdString


class FeatureOut(BaseModel):
    public_app_id: str
    feature_key: str
    display_name: str
    pricing: PricingOut
    pricing_version: int
    updated_at: str


class ModelPriceIn(StrictModel):
    input_per_1m_usd: UsdUnits
    output_per_1m_usd: UsdUnits
    cached_per_1m_usd: UsdUnits = 0


class ModelPriceOut(BaseModel):
    provider: str
    model: str
    input_per_1m_usd: UsdString
    output_per_1m_usd: UsdString
    cached_per_1m_usd: UsdString
    version: int
    updated_at: str


def _developer_out(created: catalog.DeveloperCreated) -> DeveloperOut:
    developer = created.developer
    return DeveloperOut(
        id=developer.id,
        name=developer.name,
        email=developer.email,
        status=str(developer.status),
        wallet_id=created.wallet_id,
        created_at=iso(developer.created_at),
    )


def _app_out(created: catalog.AppCreated) -> AppOut:
    app = created.app
    return AppOut(
        id=app.id,
        public_app_id=app.public_app_id,
        developer_id=app.developer_id,
        name=app.name,
        status=str(app.status),
        default_revenue_share_bps=app.default_revenue_share_bps,
        default_markup_percent=format_markup_percent(app.default_markup_bps),
        developer_wallet_id=created.developer_wallet_id,
        created_at=iso(app.created_at),
    )


def _feature_out(put: catalog.FeaturePut) -> FeatureOut:
    feature = put.feature
    markup_bps = feature.markup_bps
    return FeatureOut(
        public_app_id=put.public_app_id,
        feature_key=feature.feature_key,
        display_name=feature.display_name,
        pricing=PricingOut(
            markup_percent=None if markup_bps is None else format_markup_percent(markup_bps),
            channel_share_bps=feature.channel_share_bps,
            explicit_gateway_fee_usd=format_usd(feature.explicit_gateway_fee_units),
        ),
        pricing_version=feature.pricing_version,
        updated_at=iso(feature.updated_at),
    )


def _model_price_out(price: ModelPriceRecord) -> ModelPriceOut:
    return ModelPriceOut(
        provider=price.provider,
        model=price.model,
        input_per_1m_usd=format_usd(price.input_per_1m_units),
        output_per_1m_usd=format_usd(price.output_per_1m_units),
        cached_per_1m_usd=format_usd(price.cached_per_1m_units),
        version=price.version,
        updated_at=iso(price.updated_at),
    )


@router.post(
    "/v1/admin/developers", status_code=201, response_model=DeveloperOut, responses=error_responses(400, 401, 409)
)
def create_developer(ctx: Context, actor: AdminActor, body: DeveloperIn) -> DeveloperOut:
    return _developer_out(catalog.create_developer(ctx, actor, name=body.name, email=body.email))


@router.post("/v1/admin/apps", status_code=201, response_model=AppOut, responses=error_responses(400, 401, 404, 409))
def create_app(ctx: Context, actor: AdminActor, body: AppIn) -> AppOut:
    markup_bps = (
        DEFAULT_APP_MARKUP_BPS
        if body.default_markup_percent is None
        else parse_markup_percent(body.default_markup_percent, field="default_markup_percent")
    )
    created = catalog.create_app(
        ctx,
        actor,
        developer_id=parse_uuid(body.developer_id, field="developer_id"),
        public_app_id=body.public_app_id,
        name=body.name,
        default_revenue_share_bps=body.default_revenue_share_bps,
        default_markup_bps=markup_bps,
    )
    return _app_out(created)


@router.put(
    "/v1/admin/apps/{public_app_id}/features/{feature_key}",
    response_model=FeatureOut,
    responses=error_responses(400, 401, 404),
)
def put_feature(
    ctx: Context,
    actor: AdminActor,
    public_app_id: Annotated[str, Path(max_length=64)],
    feature_key: Annotated[str, Path(max_length=64)],
    body: FeatureIn,
) -> FeatureOut:
    pricing = body.pricing
    markup_bps = None if pricing.markup_percent is None else parse_markup_percent(pricing.markup_percent)
    put = catalog.put_feature(
        ctx,
        actor,
        public_app_id=public_app_id,
        feature_key=feature_key,
        display_name=body.display_name,
        pricing=catalog.FeaturePricingInput(
            markup_bps=markup_bps,
            channel_share_bps=pricing.channel_share_bps,
            explicit_gateway_fee_units=pricing.explicit_gateway_fee_usd,
        ),
    )
    return _feature_out(put)


@router.put(
    "/v1/admin/model-prices/{provider}/{model}",
    response_model=ModelPriceOut,
    responses=error_responses(400, 401),
)
def put_model_price(
    ctx: Context,
    actor: AdminActor,
    provider: Annotated[str, Path(max_length=64)],
    model: Annotated[str, Path(max_length=128)],
    body: ModelPriceIn,
) -> ModelPriceOut:
    price = catalog.put_model_price(
        ctx,
        actor,
        provider=provider,
        model=model,
        input_per_1m_units=body.input_per_1m_usd,
        output_per_1m_units=body.output_per_1m_usd,
        cached_per_1m_units=body.cached_per_1m_usd,
    )
    return _model_price_out(price)
