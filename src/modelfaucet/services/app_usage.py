"""recent_usage: an app's most recent usage events, newest first (admin view)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..adapters.db.tables import apps, usage_events
from ..domain.money import format_usd
from ..domain.outcomes import NotFound
from .context import ServiceContext
from .formatting import iso


def recent_usage(ctx: ServiceContext, public_app_id: str, *, limit: int = 50) -> dict[str, Any]:
    u = usage_events.c
    with ctx.db.read() as conn:
        app_id = conn.execute(select(apps.c.id).where(apps.c.public_app_id == public_app_id)).scalar_one_or_none()
        if app_id is None:
            raise NotFound("App was not found.", details={"public_app_id": public_app_id})
        rows = conn.execute(
            select(usage_events)
            .where(u.app_id == app_id)
            .order_by(u.created_at.desc(), u.request_id.desc())
            .limit(limit)
        ).all()
    return {
        "public_app_id": public_app_id,
        "items": [
            {
                "created_at": iso(row.created_at),
                "request_id": row.request_id,
                "feature_key": row.feature_key,
                "route_mode": row.route_mode,
                "provider": row.provider,
                "model": row.model,
                "input_tokens": int(row.input_tokens),
                "output_tokens": int(row.output_tokens),
                "cached_tokens": int(row.cached_tokens),
                "upstream_cost_usd": format_usd(int(row.upstream_cost_units)),
                "retail_price_usd": format_usd(int(row.retail_price_units)),
                "channel_revenue_usd": format_usd(int(row.channel_revenue_units)),
                "platform_revenue_usd": format_usd(int(row.platform_revenue_units)),
                "gateway_fee_usd": format_usd(int(row.gateway_fee_units)),
                "transaction_id": row.transaction_id,
            }
            for row in rows
        ],
    }
