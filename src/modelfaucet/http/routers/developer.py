"""The developer's own routes (SPEC §17), opened by a developer token (``mf_dev_…``).

Everything here is scoped to the token's developer: no route takes a developer or wallet
id, and an id of someone else's payout, app or provider key answers 404 exactly like an
unknown one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ...domain.earnings import EarningsGrouping, EarningsLine
from ...domain.money import format_usd
from ...domain.payouts import PayoutStatus
from ...domain.rating import format_markup_percent
from ...domain.timestamps import iso
from ...services import developer_access
from ...services.developer_access import DeveloperApp
from ...services.repositories import DeveloperPayout, FeatureRecord
from ..deps import Context
from ..developer_auth import Developer
from ..schemas import UsdString, error_responses, parse_uuid
from .admin_catalog import PricingOut
from .provider_keys import ProviderKeyDeleted, ProviderKeyList, ProviderKeyOut, UserProviderKeyIn
from .statements import STATEMENT_CSV_RESPONSES, STATEMENT_RESPONSES, From, To, statement_response, window_of

router = APIRouter(tags=["developer"])


class DeveloperFeatureOut(BaseModel):
    feature_key: str
    display_name: str
    pricing: PricingOut
    pricing_version: int
    updated_at: str


class DeveloperAppOut(BaseModel):
    public_app_id: str
    name: str
    status: str
    default_revenue_share_bps: int
    default_markup_percent: str
    created_at: str
    features: list[DeveloperFeatureOut]


class DeveloperMeOut(BaseModel):
    id: str
    name: str
    email: str
    status: str
    wallet_id: str
    created_at: str
    apps: list[DeveloperAppOut]


class DeveloperBalanceOut(BaseModel):
    wallet_id: str
    balance_usd: UsdString
    reserved_usd: UsdString
    available_usd: UsdString
    earned_usd: UsdString = Field(description="Lifetime credits from usage.")
    paid_out_usd: UsdString = Field(description="Lifetime payouts paid.")
    pending_payout_usd: UsdString = Field(description="Payouts pending review or processing.")


class EarningsLineOut(BaseModel):
    key: str = Field(description="The UTC day, the public_app_id, the feature key or provider/model.")
    requests: int
    input_tokens: int
    output_tokens: int
    retail_usd: UsdString
    channel_revenue_usd: UsdString


class EarningsTotalsOut(BaseModel):
    requests: int
    input_tokens: int
    output_tokens: int
    retail_usd: UsdString
    channel_revenue_usd: UsdString = Field(description="The usage_channel_revenue postings of the window.")


class EarningsOut(BaseModel):
    group_by: EarningsGrouping
    from_: str = Field(alias="from")
    to: str
    items: list[EarningsLineOut]
    totals: EarningsTotalsOut


class DeveloperPayoutOut(BaseModel):
    id: str
    developer_id: str
    amount_usd: UsdString
    status: PayoutStatus
    provider: str
    provider_payout_id: str | None
    created_at: str
    updated_at: str


class PayoutStatusChangeOut(BaseModel):
    at: str
    from_status: PayoutStatus | None
    to_status: PayoutStatus


class DeveloperPayoutDetail(DeveloperPayoutOut):
    history: list[PayoutStatusChangeOut] = Field(description="Status changes, oldest first.")


class DeveloperPayoutList(BaseModel):
    items: list[DeveloperPayoutOut]


def _feature_out(feature: FeatureRecord) -> DeveloperFeatureOut:
    markup = feature.markup_bps
    return DeveloperFeatureOut(
        feature_key=feature.feature_key,
        display_name=feature.display_name,
        pricing=PricingOut(
            markup_percent=None if markup is None else format_markup_percent(markup),
            channel_share_bps=feature.channel_share_bps,
            explicit_gateway_fee_usd=format_usd(feature.explicit_gateway_fee_units),
        ),
        pricing_version=feature.pricing_version,
        updated_at=iso(feature.updated_at),
    )


def _app_out(entry: DeveloperApp) -> DeveloperAppOut:
    app = entry.app
    return DeveloperAppOut(
        public_app_id=app.public_app_id,
        name=app.name,
        status=str(app.status),
        default_revenue_share_bps=app.default_revenue_share_bps,
        default_markup_percent=format_markup_percent(app.default_markup_bps),
        created_at=iso(app.created_at),
        features=[_feature_out(feature) for feature in entry.features],
    )


def _line_fields(line: EarningsLine) -> dict[str, Any]:
    return {
        "requests": line.requests,
        "input_tokens": line.input_tokens,
        "output_tokens": line.output_tokens,
        "retail_usd": format_usd(line.retail_units),
        "channel_revenue_usd": format_usd(line.channel_revenue_units),
    }


def _payout_fields(payout: DeveloperPayout) -> dict[str, Any]:
    return {
        "id": payout.id,
        "developer_id": payout.developer_id,
        "amount_usd": format_usd(payout.amount_units),
        "status": payout.status,
        "provider": payout.provider,
        "provider_payout_id": payout.provider_payout_id,
        "created_at": iso(payout.created_at),
        "updated_at": iso(payout.updated_at),
    }


@router.get("/v1/developer/me", response_model=DeveloperMeOut, responses=error_responses(401))
def get_me(ctx: Context, developer: Developer) -> DeveloperMeOut:
    """The developer, their apps and each app's features with pricing."""
    profile = developer_access.developer_profile(ctx, developer.developer_id)
    me = profile.developer
    return DeveloperMeOut(
        id=me.id,
        name=me.name,
        email=me.email,
        status=str(me.status),
        wallet_id=profile.wallet_id,
        created_at=iso(me.created_at),
        apps=[_app_out(entry) for entry in profile.apps],
    )


@router.get("/v1/developer/balance", response_model=DeveloperBalanceOut, responses=error_responses(401))
def get_balance(ctx: Context, developer: Developer) -> DeveloperBalanceOut:
    found = developer_access.developer_balance(ctx, developer.developer_id)
    return DeveloperBalanceOut(
        wallet_id=found.wallet_id,
        balance_usd=format_usd(found.balance_units),
        reserved_usd=format_usd(found.reserved_units),
        available_usd=format_usd(found.available_units),
        earned_usd=format_usd(found.earned_units),
        paid_out_usd=format_usd(found.paid_out_units),
        pending_payout_usd=format_usd(found.pending_payout_units),
    )


@router.get("/v1/developer/earnings", response_model=EarningsOut, responses=error_responses(400, 401, 404))
def get_earnings(
    ctx: Context,
    developer: Developer,
    *,
    from_: From = None,
    to: To = None,
    group_by: Annotated[EarningsGrouping, Query()] = EarningsGrouping.DAY,
    public_app_id: Annotated[str | None, Query(max_length=64, description="Only this app of yours.")] = None,
) -> EarningsOut:
    """Usage of your apps over [from, to) grouped by day, app, feature or model; the channel
    revenue totals equal your usage_channel_revenue postings of the window."""
    start, end = window_of(from_, to)
    earnings = developer_access.developer_earnings(
        ctx, developer.developer_id, start=start, end=end, grouping=group_by, public_app_id=public_app_id
    )
    return EarningsOut.model_validate(
        {
            "group_by": earnings.grouping,
            "from": iso(earnings.window.start),
            "to": iso(earnings.window.end),
            "items": [{"key": line.key, **_line_fields(line)} for line in earnings.items],
            "totals": _line_fields(earnings.totals),
        }
    )


@router.get("/v1/developer/payouts", response_model=DeveloperPayoutList, responses=error_responses(400, 401))
def list_payouts(
    ctx: Context,
    developer: Developer,
    status: Annotated[PayoutStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeveloperPayoutList:
    """Your payouts, newest first."""
    found = developer_access.developer_payouts(ctx, developer.developer_id, status=status, limit=limit)
    return DeveloperPayoutList.model_validate({"items": [_payout_fields(payout) for payout in found]})


@router.get(
    "/v1/developer/payouts/{payout_id}",
    response_model=DeveloperPayoutDetail,
    responses=error_responses(400, 401, 404),
)
def get_payout(ctx: Context, developer: Developer, payout_id: str) -> DeveloperPayoutDetail:
    """One of your payouts with its status history (no operator names or notes)."""
    found = developer_access.developer_payout(ctx, developer.developer_id, parse_uuid(payout_id, field="payout_id"))
    history = [
        {"at": iso(change.at), "from_status": change.before_status, "to_status": change.after_status}
        for change in found.history
    ]
    return DeveloperPayoutDetail.model_validate({**_payout_fields(found.payout), "history": history})


@router.get(
    "/v1/developer/statement",
    response_class=StreamingResponse,
    responses={**STATEMENT_RESPONSES, **error_responses(400, 401)},
)
def get_statement(ctx: Context, developer: Developer, from_: From = None, to: To = None) -> Any:
    """Your wallet's statement over [from, to): opening, entries with running balance, closing."""
    start, end = window_of(from_, to)
    of = developer_access.developer_statement(ctx, developer.developer_id, start=start, end=end)
    return statement_response(ctx, of, csv=False)


@router.get(
    "/v1/developer/statement.csv",
    response_class=StreamingResponse,
    responses={**STATEMENT_CSV_RESPONSES, **error_responses(400, 401)},
)
def get_statement_csv(ctx: Context, developer: Developer, from_: From = None, to: To = None) -> Any:
    start, end = window_of(from_, to)
    of = developer_access.developer_statement(ctx, developer.developer_id, start=start, end=end)
    return statement_response(ctx, of, csv=True)


@router.post(
    "/v1/developer/provider-keys",
    status_code=201,
    response_model=ProviderKeyOut,
    responses=error_responses(400, 401),
)
def add_provider_key(ctx: Context, developer: Developer, body: UserProviderKeyIn) -> ProviderKeyOut:
    """Add one of your provider keys for developer_key routing: encrypted, shown masked,
    ``base_url`` checked by the egress policy."""
    created = developer_access.add_developer_provider_key(
        ctx,
        developer,
        provider=body.provider,
        api_key=body.api_key,
        base_url=body.base_url,
        models_allowed=body.models_allowed,
    )
    return ProviderKeyOut.of(created)


@router.get("/v1/developer/provider-keys", response_model=ProviderKeyList, responses=error_responses(401))
def list_provider_keys(ctx: Context, developer: Developer) -> ProviderKeyList:
    return ProviderKeyList.of(developer_access.list_developer_provider_keys(ctx, developer))


@router.delete(
    "/v1/developer/provider-keys/{key_id}",
    response_model=ProviderKeyDeleted,
    responses=error_responses(400, 401, 404),
)
def delete_provider_key(ctx: Context, developer: Developer, key_id: str) -> ProviderKeyDeleted:
    key_row_id = parse_uuid(key_id, field="key_id")
    developer_access.delete_developer_provider_key(ctx, developer, key_row_id)
    return ProviderKeyDeleted(id=key_row_id, deleted=True)
