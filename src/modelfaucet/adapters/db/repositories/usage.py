"""Usage events, and the catalogue rows a usage batch is rated with.

Every loader takes a batch's keys and answers with one query per 500 keys (``IN`` lists
stay small enough for any planner); on PostgreSQL a batch's inputs and its end users are
one statement each, run on the bare driver (:func:`..bulk.driver_rows`). The usage rows go
in with :func:`..bulk.insert_many` (COPY on PostgreSQL).

The rating snapshot column also carries the end user's wallet and balance right after the
call, and the hold it captured with the part of its price left uncollected (the row has no
columns for them), so a duplicate report answers the original receipt.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, and_, select, tuple_
from sqlalchemy.exc import IntegrityError

from ....domain.identity import external_user_hash
from ....domain.ledger import OwnerScope
from ....domain.rating import DefaultPricing, FeaturePricing, ModelPrice, RouteMode
from ....domain.timestamps import as_utc
from ....services.repositories import BatchInputs, BillableApp, NewUsage, StoredUsage, UsageLine, UsageReceipt
from ....services.unit_of_work import ConcurrentWrite
from ..bulk import among, driver_rows, insert_many, text_array
from ..errors import unique_violation
from ..tables import accounts, app_features, apps, end_users, model_prices, usage_events
from .holds import SqlHolds

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

_END_USER_WALLETS_PG = (
    "SELECT e.id, e.app_id, e.external_user_hash, a.id AS wallet_id "
    "FROM unnest(CAST(%(apps)s AS VARCHAR[]), CAST(%(hashes)s AS VARCHAR[])) AS k(app_id, user_hash) "
    "JOIN end_users e ON e.app_id = k.app_id AND e.external_user_hash = k.user_hash "
    "LEFT JOIN accounts a ON a.owner_scope = 'end_user' AND a.owner_id = e.id"
)

# batch_inputs on PostgreSQL: one statement, one round trip. Each part is a JSON array of
# rows (json_build_array keeps BIGINT units exact: JSON numbers are read back as ints).
_BATCH_INPUTS_PG = (
    "SELECT "
    "(SELECT coalesce(json_agg(json_build_array(u.id, u.request_id, u.request_hash, u.transaction_id, "
    "u.route_mode, u.upstream_cost_units, u.retail_price_units, u.channel_revenue_units, "
    "u.platform_revenue_units, u.gateway_fee_units, u.rating_snapshot, u.created_at)), '[]') "
    "FROM usage_events u WHERE u.request_id = ANY(CAST(%(rids)s AS VARCHAR[]))) AS stored, "
    "(SELECT coalesce(json_agg(h.request_id), '[]') FROM holds h "
    "WHERE h.request_id = ANY(CAST(%(rids)s AS VARCHAR[]))) AS holds, "
    "(SELECT coalesce(json_agg(json_build_array(a.id, a.public_app_id, a.developer_id, a.status, "
    "a.default_markup_bps, a.default_revenue_share_bps)), '[]') FROM apps a "
    "WHERE a.public_app_id = ANY(CAST(%(apps)s AS VARCHAR[]))) AS apps, "
    "(SELECT coalesce(json_agg(json_build_array(f.app_id, f.feature_key, f.pricing_version, f.markup_bps, "
    "f.channel_share_bps, f.explicit_gateway_fee_units)), '[]') "
    "FROM unnest(CAST(%(feature_apps)s AS VARCHAR[]), CAST(%(feature_keys)s AS VARCHAR[])) AS k(public_app_id, key) "
    "JOIN apps a ON a.public_app_id = k.public_app_id "
    "JOIN app_features f ON f.app_id = a.id AND f.feature_key = k.key) AS features, "
    "(SELECT coalesce(json_agg(json_build_array(p.provider, p.model, p.input_per_1m_units, "
    "p.output_per_1m_units, p.cached_per_1m_units, p.version)), '[]') "
    "FROM unnest(CAST(%(providers)s AS VARCHAR[]), CAST(%(models)s AS VARCHAR[])) AS k(provider, model) "
    "JOIN model_prices p ON p.provider = k.provider AND p.model = k.model) AS prices"
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
                found[row.request_id] = _stored(row)
        return found

    def batch_inputs(
        self,
        request_ids: Collection[str],
        features: Collection[tuple[str, str]],
        prices: Collection[tuple[str, str]],
    ) -> BatchInputs:
        if self.connection.dialect.name != "postgresql" or len(request_ids) > _IN_CHUNK:
            apps = self.billable_apps({public_app_id for public_app_id, _ in features})
            return BatchInputs(
                stored=self.find(request_ids),
                hold_request_ids=frozenset(SqlHolds(self.connection, self.now).by_request_ids(request_ids)),
                apps=apps,
                features=self.feature_pricing(
                    {(apps[public_app_id].id, key) for public_app_id, key in features if public_app_id in apps}
                ),
                prices=self.model_prices(prices),
            )
        feature_keys, price_keys = sorted(features), sorted(prices)
        params: Any = {
            "rids": text_array(sorted(request_ids)),
            "apps": text_array(sorted({public_app_id for public_app_id, _ in feature_keys})),
            "feature_apps": text_array(public_app_id for public_app_id, _ in feature_keys),
            "feature_keys": text_array(key for _, key in feature_keys),
            "providers": text_array(provider for provider, _ in price_keys),
            "models": text_array(model for _, model in price_keys),
        }
        [(stored, holds, apps_found, features_found, prices_found)] = driver_rows(
            self.connection, _BATCH_INPUTS_PG, params
        )
        return BatchInputs(
            stored={item[1]: _stored(item, datetime.fromisoformat(item[11])) for item in stored},
            hold_request_ids=frozenset(holds),
            apps={item[1]: _app(item) for item in apps_found},
            features={(item[0], item[1]): _feature(item) for item in features_found},
            prices={(item[0], item[1]): _price(item) for item in prices_found},
        )

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
                found[row.public_app_id] = _app(row)
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
                found[(row.app_id, row.feature_key)] = _feature(row)
        return found

    def model_prices(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], ModelPrice]:
        found: dict[tuple[str, str], ModelPrice] = {}
        p = model_prices.c
        columns = (p.provider, p.model, p.input_per_1m_units, p.output_per_1m_units, p.cached_per_1m_units, p.version)
        for chunk in _chunks(sorted(keys)):
            for row in self.connection.execute(select(*columns).where(tuple_(p.provider, p.model).in_(chunk))):
                found[(row.provider, row.model)] = _price(row)
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
                params: Any = {"apps": text_array(app for app, _ in chunk), "hashes": text_array(h for _, h in chunk)}
                rows: Any = driver_rows(self.connection, _END_USER_WALLETS_PG, params)
            else:
                e, a = end_users.c, accounts.c
                wallet = and_(a.owner_scope == OwnerScope.END_USER.value, a.owner_id == e.id)
                stmt = (
                    select(e.id, e.app_id, e.external_user_hash, a.id.label("wallet_id"))
                    .select_from(end_users.outerjoin(accounts, wallet))
                    .where(tuple_(e.app_id, e.external_user_hash).in_(chunk))
                )
                rows = self.connection.execute(stmt)
            for end_user_id, app_id, user_hash, wallet_id in rows:
                found[by_hash[(app_id, user_hash)]] = (end_user_id, wallet_id)
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


def _stored(row: Sequence[Any], created_at: datetime | None = None) -> StoredUsage:
    """A stored usage event from its ``_RECEIPT_COLUMNS`` values (``created_at``: instead of
    the row's own, when that came as text)."""
    (usage_id, request_id, request_hash, transaction_id, route_mode, *units, snapshot, stored_at) = row
    snapshot = snapshot or {}
    upstream_cost, retail_price, channel_revenue, platform_revenue, gateway_fee = (int(value) for value in units)
    return StoredUsage(
        receipt=UsageReceipt(
            request_id=request_id,
            usage_event_id=usage_id,
            transaction_id=transaction_id,
            route_mode=RouteMode(route_mode),
            upstream_cost_units=upstream_cost,
            retail_price_units=retail_price,
            channel_revenue_units=channel_revenue,
            platform_revenue_units=platform_revenue,
            gateway_fee_units=gateway_fee,
            end_user_wallet_id=snapshot.get(_WALLET_KEY),
            end_user_balance_units=int(snapshot.get(_BALANCE_KEY, 0)),
            created_at=as_utc(stored_at if created_at is None else created_at),
            hold_id=snapshot.get(_HOLD_KEY),
            uncollected_units=int(snapshot.get(_UNCOLLECTED_KEY, 0)),
        ),
        request_hash=request_hash,
        request=snapshot.get("request", {}),
    )


def _app(row: Sequence[Any]) -> BillableApp:
    app_id, public_app_id, developer_id, status, markup_bps, revenue_share_bps = row
    return BillableApp(
        id=app_id,
        public_app_id=public_app_id,
        developer_id=developer_id,
        active=status == _ACTIVE,
        defaults=DefaultPricing(int(markup_bps), int(revenue_share_bps)),
    )


def _feature(row: Sequence[Any]) -> FeaturePricing:
    """From (app id, feature key, pricing version, markup, channel share, gateway fee)."""
    _, _, pricing_version, markup_bps, channel_share_bps, gateway_fee = row
    return FeaturePricing(
        pricing_version=int(pricing_version),
        markup_bps=None if markup_bps is None else int(markup_bps),
        channel_share_bps=None if channel_share_bps is None else int(channel_share_bps),
        explicit_gateway_fee_units=int(gateway_fee),
    )


def _price(row: Sequence[Any]) -> ModelPrice:
    """From (provider, model, input, output and cached per 1M tokens, version)."""
    _, _, input_per_1m, output_per_1m, cached_per_1m, version = row
    return ModelPrice(int(input_per_1m), int(output_per_1m), int(cached_per_1m), version=int(version))


def _chunks(values: Sequence[K]) -> Iterator[Sequence[K]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]
