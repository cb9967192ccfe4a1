"""Usage events, and the catalogue rows a usage batch is rated with.

Every loader takes a batch's keys and answers with one query per 500 keys (``IN`` lists
stay small enough for any planner). The usage rows go in with :func:`..bulk.insert_many`
(COPY on PostgreSQL for many rows).

The rating snapshot column also carries the end user's wallet and balance right after the
call, and the hold it captured with the part of its price left uncollected (the row has no
columns for them), so a duplicate report answers the original receipt.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, and_, select, text, tuple_
from sqlalchemy.exc import IntegrityError

from ....domain.identity import external_user_hash
from ....domain.ledger import OwnerScope
from ....domain.rating import DefaultPricing, FeaturePricing, ModelPrice, RouteMode
from ....domain.timestamps import as_utc
from ....services.repositories import BillableApp, NewUsage, StoredUsage, UsageLine, UsageReceipt
from ....services.unit_of_work import ConcurrentWrite
from ..bulk import among, insert_many
from ..errors import unique_violation
from ..tables import accounts, app_features, apps, end_users, model_prices, usage_events

_IN_CHUNK = 500
_ACTIVE = "active"
# Keys of the rating snapshot that hold the receipt's wallet and balance.
_WALLET_KEY = "end_user_wallet_id"
_BALANCE_KEY = "end_user_balance_after_units"
_HOLD_KEY = "captured_hold_id"  # only when the event captured a hold
_UNCOLLECTED_KEY = "uncollected_units"  # only when part of the price went uncollected

_RECEIPT_COLUMNS = (
    usage_events.c.id,
    usage_events.c.request_id,
    usage_events.c.request_hash,
    usage_events.c.transaction_id,
    usage_events.c.route_mode,
    usage_events.c.upstream_cost_units,
    usage_events.c.retail_price_units,
    usage_events.c.channel_revenue_units,
    usage_events.c.platform_revenue_units,
    usage_events.c.gateway_fee_units,
    usage_events.c.rating_snapshot,
    usage_events.c.created_at,
)

K = TypeVar("K")

_END_USER_WALLETS_PG = text(
    "SELECT e.id, e.app_id, e.external_user_hash, a.id AS wallet_id "
    "FROM unnest(CAST(:apps AS VARCHAR[]), CAST(:hashes AS VARCHAR[])) AS k(app_id, user_hash) "
    "JOIN end_users e ON e.app_id = k.app_id AND e.external_user_hash = k.user_hash "
    "LEFT JOIN accounts a ON a.owner_scope = 'end_user' AND a.owner_id = e.id"
)


class SqlUsage:
    """Implements :class:`modelfaucet.services.repositories.UsageRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    # -- a batch's loads ---------------------------------------------------------------

    def find(self, request_ids: Collection[str]) -> dict[str, StoredUsage]:
        found: dict[str, StoredUsage] = {}
        for chunk in _chunks(sorted(request_ids)):
            stmt = select(*_RECEIPT_COLUMNS).where(among(self.connection, usage_events.c.request_id, chunk))
            for row in self.connection.execute(stmt):
                snapshot = row.rating_snapshot or {}
                found[row.request_id] = StoredUsage(
                    receipt=UsageReceipt(
                        request_id=row.request_id,
                        usage_event_id=row.id,
                        transaction_id=row.transaction_id,
                        route_mode=RouteMode(row.route_mode),
                        upstream_cost_units=int(row.upstream_cost_units),
                        retail_price_units=int(row.retail_price_units),
                        channel_revenue_units=int(row.channel_revenue_units),
                        platform_revenue_units=int(row.platform_revenue_units),
                        gateway_fee_units=int(row.gateway_fee_units),
                        end_user_wallet_id=snapshot.get(_WALLET_KEY),
                        end_user_balance_units=int(snapshot.get(_BALANCE_KEY, 0)),
                        created_at=as_utc(row.created_at),
                        hold_id=snapshot.get(_HOLD_KEY),
                        uncollected_units=int(snapshot.get(_UNCOLLECTED_KEY, 0)),
                    ),
                    request_hash=row.request_hash,
                    request=snapshot.get("request", {}),
                )
        return found

    def billable_apps(self, public_app_ids: Collection[str]) -> dict[str, BillableApp]:
        found: dict[str, BillableApp] = {}
        columns = (
            apps.c.id,
            apps.c.public_app_id,
            apps.c.developer_id,
            apps.c.status,
            apps.c.default_markup_bps,
            apps.c.default_revenue_share_bps,
        )
        for chunk in _chunks(sorted(public_app_ids)):
            for row in self.connection.execute(
                select(*columns).where(among(self.connection, apps.c.public_app_id, chunk))
            ):
                found[row.public_app_id] = BillableApp(
                    id=row.id,
                    public_app_id=row.public_app_id,
                    developer_id=row.developer_id,
                    active=row.status == _ACTIVE,
                    defaults=DefaultPricing(int(row.default_markup_bps), int(row.default_revenue_share_bps)),
                )
        return found

    def feature_pricing(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], FeaturePricing]:
        found: dict[tuple[str, str], FeaturePricing] = {}
        f = app_features.c
        columns = (
            f.app_id,
            f.feature_key,
            f.pricing_version,
            f.markup_bps,
            f.channel_share_bps,
            f.explicit_gateway_fee_units,
        )
        for chunk in _chunks(sorted(keys)):
            stmt = select(*columns).where(tuple_(f.app_id, f.feature_key).in_(chunk))
            for row in self.connection.execute(stmt):
                found[(row.app_id, row.feature_key)] = FeaturePricing(
                    pricing_version=int(row.pricing_version),
                    markup_bps=None if row.markup_bps is None else int(row.markup_bps),
                    channel_share_bps=None if row.channel_share_bps is None else int(row.channel_share_bps),
                    explicit_gateway_fee_units=int(row.explicit_gateway_fee_units),
                )
        return found

    def model_prices(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], ModelPrice]:
        found: dict[tuple[str, str], ModelPrice] = {}
        p = model_prices.c
        columns = (p.provider, p.model, p.input_per_1m_units, p.output_per_1m_units, p.cached_per_1m_units, p.version)
        for chunk in _chunks(sorted(keys)):
            for row in self.connection.execute(select(*columns).where(tuple_(p.provider, p.model).in_(chunk))):
                found[(row.provider, row.model)] = ModelPrice(
                    int(row.input_per_1m_units),
                    int(row.output_per_1m_units),
                    int(row.cached_per_1m_units),
                    version=int(row.version),
                )
        return found

    def end_user_ids(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], str]:
        return {key: end_user_id for key, (end_user_id, _) in self.end_user_wallets(keys).items()}

    def end_user_wallets(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str | None]]:
        # End users are stored only as a per-app hash of their external id.
        by_hash = {(app_id, external_user_hash(app_id, user)): (app_id, user) for app_id, user in keys}
        found: dict[tuple[str, str], tuple[str, str | None]] = {}
        for chunk in _chunks(sorted(by_hash)):
            if self.connection.dialect.name == "postgresql":
                # A join on the arrays: one parameter each, and the unique (app, hash) index
                # whatever the number of keys (a row-value IN list is planned as a scan).
                params: Any = {"apps": [app for app, _ in chunk], "hashes": [h for _, h in chunk]}
                rows = self.connection.execute(_END_USER_WALLETS_PG, params)
            else:
                e, a = end_users.c, accounts.c
                wallet = and_(a.owner_scope == OwnerScope.END_USER.value, a.owner_id == e.id)
                stmt = (
                    select(e.id, e.app_id, e.external_user_hash, a.id.label("wallet_id"))
                    .select_from(end_users.outerjoin(accounts, wallet))
                    .where(tuple_(e.app_id, e.external_user_hash).in_(chunk))
                )
                rows = self.connection.execute(stmt)
            for row in rows:
                found[by_hash[(row.app_id, row.external_user_hash)]] = (row.id, row.wallet_id)
        return found

    # -- writes -------------------------------------------------------------------------

    def add_many(self, usages: Sequence[NewUsage]) -> None:
        rows = [_row(usage) for usage in usages]
        try:
            insert_many(self.connection, usage_events, _USAGE_COLUMNS, rows)
        except IntegrityError as exc:
            if unique_violation(exc):
                raise ConcurrentWrite() from exc
            raise

    # -- reads --------------------------------------------------------------------------

    def recent(self, app_id: str, *, limit: int) -> list[UsageLine]:
        u = usage_events.c
        rows = self.connection.execute(
            select(
                u.created_at,
                u.request_id,
                u.feature_key,
                u.route_mode,
                u.provider,
                u.model,
                u.input_tokens,
                u.output_tokens,
                u.cached_tokens,
                u.upstream_cost_units,
                u.retail_price_units,
                u.channel_revenue_units,
                u.platform_revenue_units,
                u.gateway_fee_units,
                u.transaction_id,
            )
            .where(u.app_id == app_id)
            .order_by(u.created_at.desc(), u.request_id.desc())
            .limit(limit)
        )
        return [
            UsageLine(
                created_at=as_utc(row.created_at),
                request_id=row.request_id,
                feature_key=row.feature_key,
                route_mode=RouteMode(row.route_mode),
                provider=row.provider,
                model=row.model,
                input_tokens=int(row.input_tokens),
                output_tokens=int(row.output_tokens),
                cached_tokens=int(row.cached_tokens),
                upstream_cost_units=int(row.upstream_cost_units),
                retail_price_units=int(row.retail_price_units),
                channel_revenue_units=int(row.channel_revenue_units),
                platform_revenue_units=int(row.platform_revenue_units),
                gateway_fee_units=int(row.gateway_fee_units),
                transaction_id=row.transaction_id,
            )
            for row in rows
        ]


_USAGE_COLUMNS = (
    "id",
    "request_id",
    "request_hash",
    "app_id",
    "public_app_id",
    "end_user_id",
    "feature_key",
    "route_mode",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "upstream_cost_units",
    "retail_price_units",
    "channel_revenue_units",
    "platform_revenue_units",
    "gateway_fee_units",
    "rating_snapshot",
    "transaction_id",
    "created_at",
)


def _row(usage: NewUsage) -> tuple[Any, ...]:
    receipt = usage.receipt
    snapshot = {
        **usage.rating_snapshot,
        _WALLET_KEY: receipt.end_user_wallet_id,
        _BALANCE_KEY: receipt.end_user_balance_units,
    }
    if receipt.hold_id is not None:
        snapshot[_HOLD_KEY] = receipt.hold_id
    if receipt.uncollected_units:
        snapshot[_UNCOLLECTED_KEY] = receipt.uncollected_units
    return (
        receipt.usage_event_id,
        receipt.request_id,
        usage.request_hash,
        usage.app_id,
        usage.public_app_id,
        usage.end_user_id,
        usage.feature_key,
        receipt.route_mode.value,
        usage.provider,
        usage.model,
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_tokens,
        receipt.upstream_cost_units,
        receipt.retail_price_units,
        receipt.channel_revenue_units,
        receipt.platform_revenue_units,
        receipt.gateway_fee_units,
        snapshot,
        receipt.transaction_id,
        receipt.created_at,
    )


def _chunks(values: Sequence[K]) -> Iterator[Sequence[K]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]
