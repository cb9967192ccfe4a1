"""In-memory usage repository: the same protocol and rules as ``SqlUsage``.

:class:`UsageState` holds the stored usage events and the catalogue a usage batch is
rated with (apps, features, model prices, end users), in the repository's own record
types. A request id is unique, as the table's constraint makes it: storing one twice
raises :class:`ConcurrentWrite`, exactly as a concurrent duplicate does on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from modelfaucet.domain.identity import external_user_hash
from modelfaucet.domain.rating import FeaturePricing, ModelPrice
from modelfaucet.services.repositories import BatchInputs, BillableApp, NewUsage, StoredUsage, UsageLine
from modelfaucet.services.unit_of_work import ConcurrentWrite


@dataclass
class UsageState:
    apps: dict[str, BillableApp] = field(default_factory=dict)  # by public app id
    features: dict[tuple[str, str], FeaturePricing] = field(default_factory=dict)  # (app id, feature key)
    prices: dict[tuple[str, str], ModelPrice] = field(default_factory=dict)  # (provider, model)
    end_users: dict[tuple[str, str], str] = field(default_factory=dict)  # (app id, user hash) → id
    events: dict[str, NewUsage] = field(default_factory=dict)  # by request id, in insertion order


class MemoryUsage:
    """Implements :class:`modelfaucet.services.repositories.UsageRepository` in memory."""

    def __init__(
        self,
        state: UsageState,
        now: datetime,
        wallets_by_owner: Callable[[], dict[str, str]],
        hold_request_ids: Callable[[], set[str]] = set,
    ) -> None:
        self.state = state
        self.now = now
        self.wallets_by_owner = wallets_by_owner  # end-user id → wallet account id, from the ledger
        self.hold_request_ids = hold_request_ids  # request ids holds were placed with, from the holds

    def batch_inputs(
        self,
        request_ids: Collection[str],
        features: Collection[tuple[str, str]],
        prices: Collection[tuple[str, str]],
    ) -> BatchInputs:
        apps = self.billable_apps({public_app_id for public_app_id, _ in features})
        return BatchInputs(
            stored=self.find(request_ids),
            hold_request_ids=frozenset(self.hold_request_ids() & set(request_ids)),
            apps=apps,
            features=self.feature_pricing({(apps[p].id, key) for p, key in features if p in apps}),
            prices=self.model_prices(prices),
        )

    def find(self, request_ids: Collection[str]) -> dict[str, StoredUsage]:
        found = {}
        for request_id in request_ids:
            stored = self.state.events.get(request_id)
            if stored is not None:
                request = stored.rating_snapshot["request"]
                found[request_id] = StoredUsage(stored.receipt, stored.request_hash, request)
        return found

    def billable_apps(self, public_app_ids: Collection[str]) -> dict[str, BillableApp]:
        return {key: self.state.apps[key] for key in public_app_ids if key in self.state.apps}

    def feature_pricing(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], FeaturePricing]:
        return {key: self.state.features[key] for key in keys if key in self.state.features}

    def model_prices(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], ModelPrice]:
        return {key: self.state.prices[key] for key in keys if key in self.state.prices}

    def end_user_ids(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], str]:
        found = {}
        for app_id, user in keys:
            end_user_id = self.state.end_users.get((app_id, external_user_hash(app_id, user)))
            if end_user_id is not None:
                found[(app_id, user)] = end_user_id
        return found

    def end_user_wallets(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str | None]]:
        wallets = self.wallets_by_owner()
        return {key: (end_user_id, wallets.get(end_user_id)) for key, end_user_id in self.end_user_ids(keys).items()}

    def add_many(self, usages: Sequence[NewUsage]) -> None:
        for usage in usages:
            if usage.receipt.request_id in self.state.events:
                raise ConcurrentWrite()
            self.state.events[usage.receipt.request_id] = usage

    def recent(self, app_id: str, *, limit: int) -> list[UsageLine]:
        mine = [usage for usage in self.state.events.values() if usage.app_id == app_id]
        mine.sort(key=lambda usage: (usage.receipt.created_at, usage.receipt.request_id), reverse=True)
        return [_line(usage) for usage in mine[:limit]]


def _line(usage: NewUsage) -> UsageLine:
    receipt = usage.receipt
    return UsageLine(
        created_at=receipt.created_at,
        request_id=receipt.request_id,
        feature_key=usage.feature_key,
        route_mode=receipt.route_mode,
        provider=usage.provider,
        model=usage.model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_tokens=usage.cached_tokens,
        upstream_cost_units=receipt.upstream_cost_units,
        retail_price_units=receipt.retail_price_units,
        channel_revenue_units=receipt.channel_revenue_units,
        platform_revenue_units=receipt.platform_revenue_units,
        gateway_fee_units=receipt.gateway_fee_units,
        transaction_id=receipt.transaction_id,
    )
