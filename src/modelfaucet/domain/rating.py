"""Rating: what one model call costs and who earns what (SPEC §14). Pure, integer-only.

Amounts are integers of 1e-8 USD. Every division rounds down, once, and the parts are
built by subtraction so they always add up exactly::

    retail = upstream + margin,   margin = channel + platform

Route modes:

- ``platform``: the platform's provider key paid the provider.
  ``retail = upstream + floor(upstream × markup_bps / 10000)``; the margin is split by the
  channel share (``floor(margin × share_bps / 10000)`` to the developer, the rest to the
  platform).
- ``developer_key``: priced exactly like ``platform``; only the posting differs — the
  developer's own key paid the provider, so the upstream part is credited to the developer
  wallet instead of provider_cost (see :func:`usage_transaction`).
- ``byok`` / ``local``: **no markup, ever**, whatever the pricing says. Upstream cost to
  the platform is 0; the price is only the feature's explicit, visible gateway fee
  (default 0), split by the same channel share.

Token prices are per million tokens. ``input_tokens``, ``output_tokens`` and
``cached_tokens`` are separate counts, each billed at its own price (the gateway reports
cached prompt tokens in ``cached_tokens`` and only the uncached ones in ``input_tokens``).
The upstream cost is ``floor(Σ tokens × price_per_1m / 1_000_000)`` over all three, rounded
down once. A gateway may report the upstream cost itself (``reported_upstream_units``); it
then replaces the token arithmetic for ``platform`` and ``developer_key``.

Markup and channel share come from the feature's pricing where it sets them, else from the
app's defaults (:func:`effective_pricing`). Every rated call keeps a
:func:`rating_snapshot` of what it was rated with, so it can be explained later whatever
the prices became.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .ledger import Posting, Reason, Transaction
from .money import BPS_DENOMINATOR, MAX_UNITS, split_bps
from .outcomes import InvalidRequest, LedgerInvariantViolation

TOKENS_PER_PRICE_UNIT = 1_000_000
# Upper bound of a token count on one event: a trillion tokens.
MAX_TOKENS = 1_000_000_000_000
# Markup is capped at 1000 % (100000 bps): anything above is a typo, not a price.
MAX_MARKUP_BPS = 100_000
_PERCENT_PATTERN = re.compile(r"^(0|[1-9][0-9]{0,3})(\.[0-9]{1,2})?$")


class RouteMode(StrEnum):
    PLATFORM = "platform"
    DEVELOPER_KEY = "developer_key"
    BYOK = "byok"
    LOCAL = "local"

    @property
    def carries_markup(self) -> bool:
        return self in (RouteMode.PLATFORM, RouteMode.DEVELOPER_KEY)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Prices per million tokens, in units of 1e-8 USD, and the version of the model's price
    they are (each change of a model's price is a new version)."""

    input_per_1m_units: int
    output_per_1m_units: int
    cached_per_1m_units: int
    version: int = 1


@dataclass(frozen=True, slots=True)
class DefaultPricing:
    """An app's default markup and channel share, for the features that do not set their own."""

    markup_bps: int
    channel_share_bps: int


@dataclass(frozen=True, slots=True)
class FeaturePricing:
    """A feature's pricing as the operator set it; ``None`` markup or share means "the app's
    default". Each change of it is a new ``pricing_version``."""

    pricing_version: int
    markup_bps: int | None = None
    channel_share_bps: int | None = None
    explicit_gateway_fee_units: int = 0


@dataclass(frozen=True, slots=True)
class Pricing:
    """The effective pricing of a feature (feature values, else the app's defaults)."""

    markup_bps: int
    channel_share_bps: int
    explicit_gateway_fee_units: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.markup_bps <= MAX_MARKUP_BPS:
            raise InvalidRequest(f"markup must be within 0..{MAX_MARKUP_BPS} bps.")
        if not 0 <= self.channel_share_bps <= BPS_DENOMINATOR:
            raise InvalidRequest("channel_share_bps must be within 0..10000.")
        if not 0 <= self.explicit_gateway_fee_units <= MAX_UNITS:
            raise InvalidRequest("explicit_gateway_fee_usd is out of range.")


@dataclass(frozen=True, slots=True)
class Usage:
    route_mode: RouteMode
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reported_upstream_units: int | None = None


@dataclass(frozen=True, slots=True)
class RatedUsage:
    upstream_cost_units: int
    retail_price_units: int
    channel_revenue_units: int
    platform_revenue_units: int
    gateway_fee_units: int

    @property
    def margin_units(self) -> int:
        return self.channel_revenue_units + self.platform_revenue_units


def parse_markup_percent(value: object, *, field: str = "markup_percent") -> int:
    """``"30"`` or ``"12.5"`` (a decimal string, at most 2 decimals) → basis points."""
    if isinstance(value, bool) or not isinstance(value, str) or not _PERCENT_PATTERN.fullmatch(value):
        raise InvalidRequest(
            f'{field} must be a decimal string of percent with at most 2 decimals, such as "30" or "12.5".',
            details={"field": field},
        )
    whole, _, fraction = value.partition(".")
    bps = int(whole) * 100 + int(fraction.ljust(2, "0") or "0")
    if bps > MAX_MARKUP_BPS:
        raise InvalidRequest(f"{field} must be at most 1000.", details={"field": field})
    return bps


def format_markup_percent(bps: int) -> str:
    """Basis points → the shortest percent string (3000 → ``"30"``, 1250 → ``"12.5"``)."""
    whole, fraction = divmod(bps, 100)
    return str(whole) if fraction == 0 else f"{whole}.{fraction:02d}".rstrip("0")


def effective_pricing(defaults: DefaultPricing, feature: FeaturePricing) -> Pricing:
    """The pricing a call of ``feature`` is rated with: the feature's own markup and share
    where it sets them, else the app's defaults; the gateway fee is always the feature's."""
    return Pricing(
        defaults.markup_bps if feature.markup_bps is None else feature.markup_bps,
        defaults.channel_share_bps if feature.channel_share_bps is None else feature.channel_share_bps,
        feature.explicit_gateway_fee_units,
    )


def rating_snapshot(
    request: Mapping[str, Any], usage: Usage, pricing: Pricing, feature: FeaturePricing, price: ModelPrice | None
) -> dict[str, Any]:
    """What a usage row records about how it was rated: the request as received, the
    effective pricing and the feature's pricing version, the model price and its version
    (when the model has one), and where the upstream cost came from."""
    if not usage.route_mode.carries_markup:
        upstream_source = "none"
    elif usage.reported_upstream_units is not None:
        upstream_source = "reported"
    else:
        upstream_source = "price_table"
    return {
        "request": request,
        "pricing": {
            # Every rated call names a feature of its app (rows written before that rule
            # may say "app_default": their feature did not exist).
            "source": "feature",
            "feature_pricing_version": feature.pricing_version,
            "markup_bps": pricing.markup_bps,
            "channel_share_bps": pricing.channel_share_bps,
            "explicit_gateway_fee_units": pricing.explicit_gateway_fee_units,
        },
        "model_price": None
        if price is None
        else {
            "version": price.version,
            "input_per_1m_units": price.input_per_1m_units,
            "output_per_1m_units": price.output_per_1m_units,
            "cached_per_1m_units": price.cached_per_1m_units,
        },
        "upstream_source": upstream_source,
    }


def upstream_from_tokens(usage: Usage, price: ModelPrice) -> int:
    total = (
        usage.input_tokens * price.input_per_1m_units
        + usage.output_tokens * price.output_per_1m_units
        + usage.cached_tokens * price.cached_per_1m_units
    )
    return total // TOKENS_PER_PRICE_UNIT


def rate(usage: Usage, pricing: Pricing, price: ModelPrice | None) -> RatedUsage:
    """Rate one call. ``price`` may be None only when it is not needed (byok/local, or a
    reported upstream cost). Raises InvalidRequest for what cannot be rated."""
    for name in ("input_tokens", "output_tokens", "cached_tokens"):
        count = getattr(usage, name)
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_TOKENS:
            raise InvalidRequest(f"{name} must be an integer within 0..{MAX_TOKENS}.", details={"field": name})

    if not usage.route_mode.carries_markup:
        fee = pricing.explicit_gateway_fee_units
        channel, platform = split_bps(fee, pricing.channel_share_bps)
        return _checked(RatedUsage(0, fee, channel, platform, gateway_fee_units=fee))

    if usage.reported_upstream_units is not None:
        upstream = usage.reported_upstream_units
        if not 0 <= upstream <= MAX_UNITS:
            raise InvalidRequest("upstream_cost_usd is out of range.", details={"field": "upstream_cost_usd"})
    elif price is None:
        raise InvalidRequest(
            "The model has no price; set one with PUT /v1/admin/model-prices/{provider}/{model}.",
            details={"field": "model"},
        )
    else:
        upstream = upstream_from_tokens(usage, price)
    markup = upstream * pricing.markup_bps // BPS_DENOMINATOR
    channel, platform = split_bps(markup, pricing.channel_share_bps)
    return _checked(RatedUsage(upstream, upstream + markup, channel, platform, gateway_fee_units=0))


def _checked(rated: RatedUsage) -> RatedUsage:
    if rated.retail_price_units > MAX_UNITS:
        raise InvalidRequest(
            "The rated price of this call is larger than the maximum of one event.",
            details={"field": "input_tokens"},
        )
    parts = rated.upstream_cost_units + rated.channel_revenue_units + rated.platform_revenue_units
    if (
        parts != rated.retail_price_units
        or min(rated.upstream_cost_units, rated.channel_revenue_units, rated.platform_revenue_units) < 0
    ):
        # Not a refusal: the arithmetic above cannot produce this.
        raise LedgerInvariantViolation(f"rated parts do not add up: {rated}")
    return rated


@dataclass(frozen=True, slots=True)
class UsageAccounts:
    end_user: str
    developer: str
    platform: str
    provider_cost: str


def usage_postings(rated: RatedUsage, route_mode: RouteMode, accounts: UsageAccounts) -> list[Posting]:
    """The postings of one call (SPEC §5); zero legs are omitted (postings are non-zero).

    The reason of each posting names its role, whatever account it lands on: a
    ``developer_key`` call credits the upstream part to the developer wallet with reason
    ``usage_provider_cost``.
    """
    upstream_account = accounts.developer if route_mode is RouteMode.DEVELOPER_KEY else accounts.provider_cost
    legs = [
        (accounts.end_user, -rated.retail_price_units, Reason.USAGE_RETAIL_PRICE),
        (upstream_account, rated.upstream_cost_units, Reason.USAGE_PROVIDER_COST),
        (accounts.developer, rated.channel_revenue_units, Reason.USAGE_CHANNEL_REVENUE),
        (accounts.platform, rated.platform_revenue_units, Reason.USAGE_PLATFORM_REVENUE),
    ]
    return [Posting(account, amount, reason.value) for account, amount, reason in legs if amount != 0]


def usage_transaction(
    rated: RatedUsage, route_mode: RouteMode, accounts: UsageAccounts, *, request_id: str
) -> Transaction | None:
    """The balanced transaction of one call, or None for a call that moves no money."""
    postings = usage_postings(rated, route_mode, accounts)
    if not postings:
        return None
    return Transaction.of(
        Reason.USAGE_RETAIL_PRICE.value, postings, reference_type="usage_event", reference_id=request_id
    )
