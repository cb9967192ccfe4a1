"""Reconciliation check for usage: every usage event has exactly its postings.

For each usage event the postings of its ledger transaction, summed per role (reason),
must equal the event's stored amounts: ``usage_retail_price`` = −retail,
``usage_provider_cost`` = upstream, ``usage_channel_revenue`` = channel,
``usage_platform_revenue`` = platform, nothing else; a priced event must have a
transaction and a free one none. Offending rows are named by request id.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, case, func, or_, select

from ..adapters.db.tables import ledger_postings, usage_events
from ..domain.ledger import Reason
from ..domain.money import format_usd
from .reconcile import MAX_LISTED, CheckResult

NAME = "usage_events_have_their_postings"


def _role_sum(reason: Reason) -> ColumnElement[Any]:
    return func.coalesce(
        func.sum(case((ledger_postings.c.reason == reason.value, ledger_postings.c.amount_units), else_=0)), 0
    )


def usage_postings_check(conn: Connection) -> CheckResult:
    u = usage_events.c
    retail = _role_sum(Reason.USAGE_RETAIL_PRICE).label("retail")
    upstream = _role_sum(Reason.USAGE_PROVIDER_COST).label("upstream")
    channel = _role_sum(Reason.USAGE_CHANNEL_REVENUE).label("channel")
    platform = _role_sum(Reason.USAGE_PLATFORM_REVENUE).label("platform")
    usage_reasons = [
        Reason.USAGE_RETAIL_PRICE.value,
        Reason.USAGE_PROVIDER_COST.value,
        Reason.USAGE_CHANNEL_REVENUE.value,
        Reason.USAGE_PLATFORM_REVENUE.value,
    ]
    others = func.coalesce(func.sum(case((ledger_postings.c.reason.not_in(usage_reasons), 1), else_=0)), 0).label(
        "others"
    )
    per_event = (
        select(
            u.request_id,
            u.transaction_id,
            u.retail_price_units,
            u.upstream_cost_units,
            u.channel_revenue_units,
            u.platform_revenue_units,
            retail,
            upstream,
            channel,
            platform,
            others,
        )
        .select_from(usage_events.outerjoin(ledger_postings, ledger_postings.c.transaction_id == u.transaction_id))
        .group_by(
            u.id,
            u.request_id,
            u.transaction_id,
            u.retail_price_units,
            u.upstream_cost_units,
            u.channel_revenue_units,
            u.platform_revenue_units,
        )
        .having(
            or_(
                retail != -u.retail_price_units,
                upstream != u.upstream_cost_units,
                channel != u.channel_revenue_units,
                platform != u.platform_revenue_units,
                others != 0,
                (u.transaction_id.is_(None)) & (u.retail_price_units != 0),
                (u.transaction_id.is_not(None)) & (u.retail_price_units == 0),
            )
        )
        .order_by(u.request_id)
        .limit(MAX_LISTED + 1)
    )
    rows = conn.execute(per_event).all()
    offending = [
        {
            "request_id": row.request_id,
            "transaction_id": row.transaction_id,
            "retail_price_usd": format_usd(int(row.retail_price_units)),
            "posted_retail_usd": format_usd(-int(row.retail)),
            "upstream_cost_usd": format_usd(int(row.upstream_cost_units)),
            "posted_upstream_usd": format_usd(int(row.upstream)),
            "channel_revenue_usd": format_usd(int(row.channel_revenue_units)),
            "posted_channel_usd": format_usd(int(row.channel)),
            "platform_revenue_usd": format_usd(int(row.platform_revenue_units)),
            "posted_platform_usd": format_usd(int(row.platform)),
        }
        for row in rows
    ]
    return CheckResult(
        name=NAME,
        ok=not rows,
        description="Every usage event has exactly its postings (retail, provider cost, channel, platform).",
        offending=offending,
        offending_count=len(rows),
    )
