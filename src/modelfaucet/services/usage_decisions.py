"""The usage path's values and its pure steps: no I/O, no unit of work.

:mod:`~modelfaucet.services.record_usage` loads what these steps need, calls them in this
order, and writes what they decided:

1. :func:`triage` — idempotency first: by its :func:`fingerprint` (taken before the unit of
   work opens), each event is a duplicate of a stored one, a conflicting reuse of its
   ``request_id``, a repeat of an earlier event of the same batch, or fresh.
2. :func:`rate_events` — each fresh event's app (exists, is active), feature (is one of the
   app's) and price, then :func:`~modelfaucet.domain.rating.rate`.
3. :func:`decide` — affordability against running balances: events are taken in order and
   each debit is checked with :func:`~modelfaucet.domain.ledger.apply_net_changes` against
   the balance the earlier events of the batch left, so no batch can overdraw a wallet.

Each step returns the events that go on and, by batch index, the refusals it made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from ..domain.catalog import APP_NOT_FOUND, FEATURE_NOT_FOUND
from ..domain.holds import HOLD_NOT_FOUND, HoldStatus, split_capture
from ..domain.identity import external_user_hash
from ..domain.ledger import AccountState, apply_net_changes
from ..domain.money import format_usd
from ..domain.outcomes import (
    Forbidden,
    IdempotencyConflict,
    InsufficientBalance,
    NotFound,
    Refusal,
)
from ..domain.rating import (
    FeaturePricing,
    ModelPrice,
    RatedUsage,
    RouteMode,
    Usage,
    effective_pricing,
    rate,
    rating_snapshot,
)
from .idempotency import request_digest
from .repositories import BillableApp, HoldRecord, StoredUsage, UsageReceipt


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One model call as the gateway reports it (the command)."""

    request_id: str
    public_app_id: str
    external_user_id: str
    feature_key: str
    route_mode: RouteMode
    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    upstream_cost_units: int | None = None
    hold_id: str | None = None  # capture this hold (else the hold placed with the same request_id)

    def fingerprint(self) -> dict[str, Any]:
        """What makes two reports of one request_id "the same": all fields, the user hashed.
        ``hold_id`` only when sent, so the digests stored before holds existed keep matching."""
        printed: dict[str, Any] = {
            "public_app_id": self.public_app_id,
            "external_user_id": external_user_hash(self.public_app_id, self.external_user_id),
            "feature_key": self.feature_key,
            "route_mode": self.route_mode.value,
            "provider": self.provider,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "upstream_cost_usd": None if self.upstream_cost_units is None else format_usd(self.upstream_cost_units),
        }
        if self.hold_id is not None:
            printed["hold_id"] = self.hold_id
        return printed

    @property
    def usage(self) -> Usage:
        return Usage(
            self.route_mode,
            self.input_tokens,
            self.output_tokens,
            self.cached_tokens,
            reported_upstream_units=self.upstream_cost_units,
        )


class UsageStatus(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"  # the request id was recorded before: its original receipt, nothing posted
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class UsageOutcome:
    """The result of one event: a receipt (recorded, duplicate) or a refusal (rejected)."""

    request_id: str
    status: UsageStatus
    receipt: UsageReceipt | None = None
    error: Refusal | None = None

    @property
    def ok(self) -> bool:
        return self.status is not UsageStatus.REJECTED


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """An event's :meth:`~UsageEvent.fingerprint` and its digest (the stored ``request_hash``)."""

    fields: dict[str, Any]
    digest: str


def fingerprint(event: UsageEvent) -> Fingerprint:
    """Taken before the unit of work opens (it needs no stored data, and hashes the end user
    with an HMAC): once per event, whatever the retries; it serves the duplicate check, a
    conflict's differing fields and the rating snapshot."""
    fields = event.fingerprint()
    return Fingerprint(fields, request_hash(fields))


def request_hash(fields: Mapping[str, Any]) -> str:
    # Usage rows were first hashed with non-ASCII escaped: stored hashes must keep matching.
    return request_digest(fields, ensure_ascii=True)


# --- 1. idempotency --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fresh:
    """An event whose request id is neither stored nor earlier in its batch."""

    index: int
    event: UsageEvent
    fingerprint: Fingerprint


@dataclass(frozen=True, slots=True)
class Triage:
    fresh: list[Fresh]
    duplicates: dict[int, UsageReceipt]  # index → the stored event's receipt
    refused: dict[int, Refusal]
    repeats: dict[int, int]  # index → index of the first event of the batch with its request id


def triage(
    events: Sequence[UsageEvent], fingerprints: Sequence[Fingerprint], stored: Mapping[str, StoredUsage]
) -> Triage:
    """Judge each event's request id against the stored events, then against the earlier
    events of the batch: the same content is a duplicate, other content a conflict."""
    result = Triage([], {}, {}, {})
    first_in_batch: dict[str, Fresh] = {}
    for index, (event, printed) in enumerate(zip(events, fingerprints, strict=True)):
        found = stored.get(event.request_id)
        if found is not None:
            if found.request_hash == printed.digest:
                result.duplicates[index] = found.receipt
            else:
                result.refused[index] = _conflict(event.request_id, printed.fields, found.request)
            continue
        first = first_in_batch.get(event.request_id)
        if first is not None:
            if first.fingerprint.digest == printed.digest:
                result.repeats[index] = first.index
            else:
                result.refused[index] = _conflict(event.request_id, printed.fields, first.fingerprint.fields)
            continue
        fresh = Fresh(index, event, printed)
        first_in_batch[event.request_id] = fresh
        result.fresh.append(fresh)
    return result


def _conflict(request_id: str, current: Mapping[str, Any], original: Mapping[str, Any]) -> IdempotencyConflict:
    differing = sorted(name for name in current if current.get(name) != original.get(name))
    return IdempotencyConflict(
        "This request_id was already used for a different usage event.",
        details={"request_id": request_id, "differing_fields": differing},
    )


# --- 2. rating -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Catalogue:
    """What rating a batch needs, loaded for it: apps by public id, features by (app id,
    feature key), prices by (provider, model), end-user ids by (app id, external user id),
    and the wallets of those end users that have one (end-user id → account id)."""

    apps: Mapping[str, BillableApp]
    features: Mapping[tuple[str, str], FeaturePricing]
    prices: Mapping[tuple[str, str], ModelPrice]
    end_users: Mapping[tuple[str, str], str]
    wallets: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rated:
    fresh: Fresh
    app: BillableApp
    end_user_id: str | None  # None: an end user this app has never reported
    amounts: RatedUsage
    snapshot: dict[str, Any]
    wallet_id: str | None = None  # the end user's wallet, when it has one

    @property
    def index(self) -> int:
        return self.fresh.index

    @property
    def event(self) -> UsageEvent:
        return self.fresh.event


def rate_events(fresh: Sequence[Fresh], catalogue: Catalogue) -> tuple[list[Rated], dict[int, Refusal]]:
    """Rate each event, refusing in this order: unknown app, inactive app, a feature that is
    not the app's, then what :func:`~modelfaucet.domain.rating.rate` refuses."""
    rated: list[Rated] = []
    refused: dict[int, Refusal] = {}
    for item in fresh:
        event = item.event
        app = catalogue.apps.get(event.public_app_id)
        if app is None:
            refused[item.index] = NotFound(APP_NOT_FOUND, details={"public_app_id": event.public_app_id})
            continue
        if not app.active:
            refused[item.index] = Forbidden("App is not active.", details={"public_app_id": event.public_app_id})
            continue
        feature = catalogue.features.get((app.id, event.feature_key))
        if feature is None:
            refused[item.index] = NotFound(FEATURE_NOT_FOUND, details={"feature_key": event.feature_key})
            continue
        usage = event.usage
        price = catalogue.prices.get((event.provider, event.model))
        try:
            pricing = effective_pricing(app.defaults, feature)
            rated_usage = rate(usage, pricing, price)
        except Refusal as refusal:
            refused[item.index] = refusal
            continue
        end_user_id = catalogue.end_users.get((app.id, event.external_user_id))
        rated.append(
            Rated(
                item,
                app,
                end_user_id,
                rated_usage,
                rating_snapshot(item.fingerprint.fields, usage, pricing, feature, price),
                None if end_user_id is None else catalogue.wallets.get(end_user_id),
            )
        )
    return rated, refused


# --- 3. affordability ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accepted:
    rated: Rated
    wallet_id: str | None  # None: a free call of an end user without a wallet (created on write)
    balance_after_units: int
    hold: HoldRecord | None = None  # the hold this event captures
    uncollected_units: int = 0  # the part of the price the wallet could not pay (with a hold only)


@dataclass(frozen=True, slots=True)
class HoldMatch:
    captures: dict[int, HoldRecord]  # index → the held hold this event captures
    captured_by: dict[int, str]  # index → request id of the stored event that captured its hold
    repeats: dict[int, int]  # index → index of the earlier event of this batch capturing its hold
    refused: dict[int, Refusal]  # index → the hold it names is unknown or not its own


def match_holds(
    rated: Sequence[Rated], by_request: Mapping[str, HoldRecord], by_id: Mapping[str, HoldRecord]
) -> HoldMatch:
    """Which hold each event captures (SPEC §18), by batch index: the hold named by its
    ``hold_id``, else the one placed with its ``request_id``; only a ``held`` hold of the
    same app and end user. Also: events naming a hold another event already captured (by
    index: that event's request id, to answer as a duplicate), and events naming a hold
    that is not theirs (``not_found``). A released or expired hold captures nothing: the
    event posts as one without a hold."""
    found = HoldMatch({}, {}, {}, {})
    taken: dict[str, int] = {}  # hold id → index of the event of this batch capturing it
    for item in rated:
        event = item.event
        hold = by_id.get(event.hold_id) if event.hold_id is not None else by_request.get(event.request_id)
        mine = hold is not None and hold.app_id == item.app.id and hold.end_user_id == item.end_user_id
        if event.hold_id is not None and (hold is None or not mine):
            found.refused[item.index] = NotFound(HOLD_NOT_FOUND, details={"hold_id": event.hold_id})
            continue
        if hold is None or not mine:
            continue
        if hold.status is HoldStatus.CAPTURED and hold.capture_request_id is not None:
            found.captured_by[item.index] = hold.capture_request_id
        elif hold.id in taken:
            found.repeats[item.index] = taken[hold.id]
        elif hold.status is HoldStatus.HELD:
            found.captures[item.index] = hold
            taken[hold.id] = item.index
    return found


def decide(
    rated: Sequence[Rated], wallets: Mapping[str, AccountState], holds: Mapping[int, HoldRecord] | None = None
) -> tuple[list[Accepted], dict[int, Refusal]]:
    """Accept each event its end user can pay, in order, against the balances the earlier
    events of the batch left. ``wallets`` are the end users' wallets by end-user id (locked
    by the caller); they are not changed. An end user without a wallet has nothing: only a
    free call is accepted.

    An event that captures a hold (``holds``, by batch index) releases it and is never
    refused for its price: the wallet pays what is available, the rest is uncollected
    (:func:`~modelfaucet.domain.holds.split_capture`)."""
    holds = holds or {}
    running = {state.account_id: replace(state) for state in wallets.values()}
    wallet_of_user = {user_id: state.account_id for user_id, state in wallets.items()}
    accepted: list[Accepted] = []
    refused: dict[int, Refusal] = {}
    for item in rated:
        retail = item.amounts.retail_price_units
        wallet_id = None if item.end_user_id is None else wallet_of_user.get(item.end_user_id)
        if wallet_id is None:
            if retail > 0:
                refused[item.index] = InsufficientBalance(
                    "The end user has no wallet balance for this call.",
                    details={"available_usd": format_usd(0), "requested_usd": format_usd(retail)},
                )
            else:
                accepted.append(Accepted(item, None, 0))
            continue
        state = running[wallet_id]
        hold = holds.get(item.index)
        if hold is not None:
            state.reserved_units -= hold.amount_units
            capture = split_capture(retail, max(0, state.available_units))
            state.balance_units -= capture.collected_units
            accepted.append(Accepted(item, wallet_id, state.balance_units, hold, capture.uncollected_units))
            continue
        if retail > 0:
            check = apply_net_changes({wallet_id: state}, {wallet_id: -retail})
            if not check.ok:
                refused[item.index] = InsufficientBalance(
                    "Wallet does not have enough balance for this call.",
                    details={
                        "wallet_id": wallet_id,
                        "available_usd": format_usd(state.available_units),
                        "requested_usd": format_usd(retail),
                    },
                )
                continue
            state.balance_units = check.new_balances[wallet_id]
        accepted.append(Accepted(item, wallet_id, state.balance_units))
    return accepted, refused
