"""The catalog operators manage (SPEC §15): developers, apps, features with pricing, model prices.

One public function per operation, each owning its write transaction and writing one audit
row naming the operator. A price or pricing change applies from the moment it commits:
each row carries a version that every usage event records in its rating snapshot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from ..adapters.db import audit, ledger
from ..adapters.db.tables import app_features, apps, developers, model_prices
from ..domain.identity import new_id
from ..domain.ledger import OwnerScope
from ..domain.money import format_usd
from ..domain.outcomes import InvalidRequest, InvalidState, NotFound
from ..domain.rating import format_markup_percent
from .context import Actor, ServiceContext
from .formatting import iso

PUBLIC_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_APP_MARKUP_BPS = 3000


@dataclass(frozen=True)
class FeaturePricingInput:
    """``None`` means "use the app's default" (markup, share) or 0 (fee)."""

    markup_bps: int | None = None
    channel_share_bps: int | None = None
    explicit_gateway_fee_units: int = 0


def _check_key(value: str, field: str) -> None:
    if not PUBLIC_ID_PATTERN.fullmatch(value):
        raise InvalidRequest(
            f"{field} must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit.",
            details={"field": field},
        )


def create_developer(ctx: ServiceContext, actor: Actor, *, name: str, email: str) -> dict[str, Any]:
    now = ctx.clock()
    email = email.strip().lower()
    with ctx.db.transaction() as conn:
        if conn.execute(select(developers.c.id).where(developers.c.email == email)).first():
            raise InvalidState("A developer with this email already exists.", details={"field": "email"})
        developer_id = new_id()
        conn.execute(
            developers.insert().values(id=developer_id, name=name, email=email, status="active", created_at=now)
        )
        wallet_id = ledger.ensure_account(conn, ctx.db.insert, OwnerScope.DEVELOPER, developer_id, now=now)
        audit.record(
            conn,
            now=now,
            actor=actor.name,
            action="developer.create",
            resource_type="developer",
            resource_id=developer_id,
            after_status="active",
            request_id=actor.request_id,
            details={"email": email},
        )
    return {
        "id": developer_id,
        "name": name,
        "email": email,
        "status": "active",
        "wallet_id": wallet_id,
        "created_at": iso(now),
    }


def create_app(
    ctx: ServiceContext,
    actor: Actor,
    *,
    developer_id: str,
    public_app_id: str,
    name: str,
    default_revenue_share_bps: int,
    default_markup_bps: int = DEFAULT_APP_MARKUP_BPS,
) -> dict[str, Any]:
    _check_key(public_app_id, "public_app_id")
    now = ctx.clock()
    with ctx.db.transaction() as conn:
        if conn.execute(select(developers.c.id).where(developers.c.id == developer_id)).first() is None:
            raise NotFound("Developer was not found.", details={"developer_id": developer_id})
        if conn.execute(select(apps.c.id).where(apps.c.public_app_id == public_app_id)).first():
            raise InvalidState("An app with this public_app_id already exists.", details={"field": "public_app_id"})
        app_id = new_id()
        conn.execute(
            apps.insert().values(
                id=app_id,
                public_app_id=public_app_id,
                developer_id=developer_id,
                name=name,
                status="active",
                default_revenue_share_bps=default_revenue_share_bps,
                default_markup_bps=default_markup_bps,
                created_at=now,
            )
        )
        wallet_id = ledger.ensure_account(conn, ctx.db.insert, OwnerScope.DEVELOPER, developer_id, now=now)
        audit.record(
            conn,
            now=now,
            actor=actor.name,
            action="app.create",
            resource_type="app",
            resource_id=public_app_id,
            after_status="active",
            request_id=actor.request_id,
            details={
                "developer_id": developer_id,
                "default_revenue_share_bps": default_revenue_share_bps,
                "default_markup_bps": default_markup_bps,
            },
        )
    return {
        "id": app_id,
        "public_app_id": public_app_id,
        "developer_id": developer_id,
        "name": name,
        "status": "active",
        "default_revenue_share_bps": default_revenue_share_bps,
        "default_markup_percent": format_markup_percent(default_markup_bps),
        "developer_wallet_id": wallet_id,
        "created_at": iso(now),
    }


def put_feature(
    ctx: ServiceContext,
    actor: Actor,
    *,
    public_app_id: str,
    feature_key: str,
    display_name: str,
    pricing: FeaturePricingInput,
) -> dict[str, Any]:
    _check_key(feature_key, "feature_key")
    now = ctx.clock()
    values = {
        "display_name": display_name,
        "markup_bps": pricing.markup_bps,
        "channel_share_bps": pricing.channel_share_bps,
        "explicit_gateway_fee_units": pricing.explicit_gateway_fee_units,
        "updated_at": now,
    }
    with ctx.db.transaction() as conn:
        app_id = _app_id(conn, public_app_id)
        where = (app_features.c.app_id == app_id) & (app_features.c.feature_key == feature_key)
        created = conn.execute(
            ctx.db.insert(app_features)
            .values(id=new_id(), app_id=app_id, feature_key=feature_key, pricing_version=1, created_at=now, **values)
            .on_conflict_do_nothing(index_elements=["app_id", "feature_key"])
            .returning(app_features.c.id)
        ).first()
        # An existing feature: the new pricing bumps the version in one statement.
        if created is None:
            conn.execute(
                update(app_features).where(where).values(pricing_version=app_features.c.pricing_version + 1, **values)
            )
        row = conn.execute(select(app_features).where(where)).one()
        audit.record(
            conn,
            now=now,
            actor=actor.name,
            action="feature.put",
            resource_type="app_feature",
            resource_id=f"{public_app_id}/{feature_key}",
            request_id=actor.request_id,
            details={
                "pricing_version": int(row.pricing_version),
                "markup_bps": pricing.markup_bps,
                "channel_share_bps": pricing.channel_share_bps,
                "explicit_gateway_fee_units": pricing.explicit_gateway_fee_units,
            },
        )
    return feature_view(public_app_id, row)


def feature_view(public_app_id: str, row: Any) -> dict[str, Any]:
    return {
        "public_app_id": public_app_id,
        "feature_key": row.feature_key,
        "display_name": row.display_name,
        "pricing": {
            "markup_percent": None if row.markup_bps is None else format_markup_percent(int(row.markup_bps)),
            "channel_share_bps": row.channel_share_bps,
            "explicit_gateway_fee_usd": format_usd(int(row.explicit_gateway_fee_units)),
        },
        "pricing_version": int(row.pricing_version),
        "updated_at": iso(row.updated_at),
    }


def put_model_price(
    ctx: ServiceContext,
    actor: Actor,
    *,
    provider: str,
    model: str,
    input_per_1m_units: int,
    output_per_1m_units: int,
    cached_per_1m_units: int,
) -> dict[str, Any]:
    _check_key(provider, "provider")
    if not model or len(model) > 128 or any(ch.isspace() or not ch.isprintable() for ch in model):
        raise InvalidRequest("model must be 1-128 printable characters without spaces.", details={"field": "model"})
    now = ctx.clock()
    values = {
        "input_per_1m_units": input_per_1m_units,
        "output_per_1m_units": output_per_1m_units,
        "cached_per_1m_units": cached_per_1m_units,
        "updated_at": now,
    }
    with ctx.db.transaction() as conn:
        where = (model_prices.c.provider == provider) & (model_prices.c.model == model)
        created = conn.execute(
            ctx.db.insert(model_prices)
            .values(id=new_id(), provider=provider, model=model, version=1, created_at=now, **values)
            .on_conflict_do_nothing(index_elements=["provider", "model"])
            .returning(model_prices.c.id)
        ).first()
        if created is None:
            conn.execute(update(model_prices).where(where).values(version=model_prices.c.version + 1, **values))
        row = conn.execute(select(model_prices).where(where)).one()
        audit.record(
            conn,
            now=now,
            actor=actor.name,
            action="model_price.put",
            resource_type="model_price",
            resource_id=f"{provider}/{model}",
            request_id=actor.request_id,
            details={"version": int(row.version), **{k: v for k, v in values.items() if k.endswith("_units")}},
        )
    return {
        "provider": provider,
        "model": model,
        "input_per_1m_usd": format_usd(int(row.input_per_1m_units)),
        "output_per_1m_usd": format_usd(int(row.output_per_1m_units)),
        "cached_per_1m_usd": format_usd(int(row.cached_per_1m_units)),
        "version": int(row.version),
        "updated_at": iso(row.updated_at),
    }


def _app_id(conn: Connection, public_app_id: str) -> str:
    found = conn.execute(select(apps.c.id).where(apps.c.public_app_id == public_app_id)).scalar_one_or_none()
    if found is None:
        raise NotFound("App was not found.", details={"public_app_id": public_app_id})
    return str(found)
