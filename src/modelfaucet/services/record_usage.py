"""record_usage: rate model calls and post them to the ledger, many per unit of work.

:func:`record_usage_batch` is the one decision-and-write path; the group-commit engine
(:mod:`modelfaucet.services.posting_engine`) and the direct path (:func:`record_usage`: CLI,
tests) both call it. For a batch it runs two units of work:

1. **Read, holding no lock** (:func:`_prepare`, a read-only unit of work before the write's
   transaction begins): the stored events with the batch's request ids, the request ids a
   hold was placed with, and the apps, features and model prices its events name, in one
   statement on PostgreSQL (``usage.batch_inputs``). Then **idempotency first**
   (:func:`~.usage_decisions.triage`): a known id with the same content is a ``duplicate``
   (the original receipt, nothing posted), with other content ``idempotency_conflict``
   naming the differing fields; a repeated id inside the batch is judged against its first
   occurrence. Then **rate** each fresh event (:func:`~.usage_decisions.rate_events`, pure).
   End users and wallets the engine has seen before come from its :class:`EndUserWallets`
   (ids only: neither row is ever deleted); prices, features and apps are read every batch.
2. **Write** (:func:`_post_planned`, one unit of work). The **fast path**
   (:func:`_fast_accept`): when no event involves a hold and every wallet can pay for all
   of its events, ``uow.ledger.debit_wallets`` locks and debits them by account id in one
   guarded all-or-nothing statement and every event is accepted. Otherwise nothing moved,
   and the batch goes the **careful way** (:func:`_post_careful`): **lock** the end users'
   wallets (``uow.ledger.lock_wallets``, in id order), read their holds under those locks,
   and **decide** with no I/O (:func:`~.usage_decisions.decide`): no event can overdraw a
   wallet whatever else is in the batch; an unaffordable one is ``insufficient_balance`` on
   its own.
   Either way the writes happen **once**: ``uow.ledger.post_many`` moves each account once
   by the batch's summed change (the platform, provider-cost and developer accounts once
   per batch and last, just before the commit) and inserts every accepted event's own
   balanced transaction; the usage rows go in too.

Nothing the read saw is trusted for money: the guarded debit re-checks every wallet under
its row lock, and the usage rows' unique request id is the idempotency guard. A request id
stored by another process after the read makes the usage insert fail; the batch is then
decided again from step 1.

If a concurrent transaction stores one of the request ids first (the usage insert then
hits the unique constraint), or PostgreSQL picks this transaction as a deadlock or
serialisation victim, the unit of work raises
:class:`~modelfaucet.services.unit_of_work.ConcurrentWrite`, nothing is kept, and the batch is
decided again in a fresh unit of work (the lookup now sees the committed rows).

An unknown end user has no wallet and so no balance: a priced call is refused 402; a free
call (zero price) creates the end user and an empty wallet, so its usage is still recorded.
No audit row is written per usage event: the ledger and the usage row are the record.

**Holds** (SPEC §18, :mod:`.holds`): after the wallets are locked, their overdue holds
expire; an event then captures the ``held`` hold named by its ``hold_id`` or placed with its
``request_id`` (:func:`~.usage_decisions.match_holds`). In the same unit of work the hold
ends ``captured``, its reservation is released and the price is debited; a price the
wallet cannot cover is never refused but split (:func:`~modelfaucet.domain.holds.with_shortfall`):
the wallet pays what it has, the platform's ``uncollected_usage`` account the rest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Generic, TypeVar

from ..domain.holds import with_shortfall
from ..domain.identity import new_id
from ..domain.ledger import PLATFORM_OWNER_ID, PROVIDER_COST_OWNER_ID, OwnerScope, SystemAccount, Transaction
from ..domain.outcomes import LedgerInvariantViolation, Refusal
from ..domain.rating import UsageAccounts, usage_transaction
from .context import ServiceContext
from .holds import release_expired
from .repositories import BatchInputs, NewUsage, UsageReceipt
from .unit_of_work import ConcurrentWrite, UnitOfWork
from .usage_decisions import (
    Accepted,
    Catalogue,
    Fingerprint,
    Fresh,
    Rated,
    Triage,
    UsageEvent,
    UsageOutcome,
    UsageStatus,
    decide,
    fingerprint,
    match_holds,
    rate_events,
    triage,
)

__all__ = [
    "MAX_ATTEMPTS",
    "AccountIds",
    "EndUserWallets",
    "UsageEvent",
    "UsageOutcome",
    "UsageReceipt",
    "UsageStatus",
    "record_usage",
    "record_usage_batch",
]

MAX_ATTEMPTS = 4

K = TypeVar("K")
V = TypeVar("V")

_PLATFORM = (OwnerScope.PLATFORM.value, PLATFORM_OWNER_ID)
_PROVIDER_COST = (OwnerScope.PROVIDER_COST.value, PROVIDER_COST_OWNER_ID)


class KnownIds(Generic[K, V]):
    """Ids of rows that exist, remembered per process: an id never changes once its row
    exists (accounts and end users are never deleted), and only ids read back as existing,
    committed rows are remembered — never one the current batch created, which is not
    committed yet and vanishes if the batch rolls back. Nothing about balances or decisions
    lives here. Bounded: past ``limit`` entries it starts afresh."""

    def __init__(self, limit: int = 100_000) -> None:
        self._ids: dict[K, V] = {}
        self._lock = threading.Lock()
        self.limit = limit

    def get(self, key: K) -> V | None:
        return self._ids.get(key)

    def remember(self, key: K, value: V) -> None:
        with self._lock:
            if len(self._ids) >= self.limit:
                self._ids.clear()
            self._ids[key] = value


class AccountIds(KnownIds[tuple[str, str], str]):
    """(scope, owner) → id of the credit-only accounts a usage batch posts to (platform,
    provider cost, developer wallets)."""


class EndUserWallets(KnownIds[tuple[str, str], tuple[str, str]]):
    """(app id, external user id) → (end-user id, wallet account id), for end users that
    have a wallet."""


def record_usage(ctx: ServiceContext, event: UsageEvent) -> UsageOutcome:
    """The direct path for one event (no batching): the same decision code."""
    return record_usage_batch(ctx, [event])[0]


def record_usage_batch(
    ctx: ServiceContext,
    events: Sequence[UsageEvent],
    *,
    account_ids: AccountIds | None = None,
    end_users: EndUserWallets | None = None,
) -> list[UsageOutcome]:
    """Decide and post ``events``: read and rate, then one write unit of work; one outcome
    per event, in order.

    ``account_ids`` and ``end_users`` (the group-commit engine passes its own) save the
    look-ups of the credit-only accounts' ids and of known end users and their wallets;
    without them they are read in one query each per batch."""
    if not events:
        return []
    fingerprints = [fingerprint(event) for event in events]
    started = time.perf_counter()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with ctx.reader(autocommit=True) as reader:
                plan = _prepare(reader, events, fingerprints, end_users)
            with ctx.unit_of_work() as uow:
                outcomes = _post_planned(uow, plan, account_ids)
                uow.after_commit(partial(_tell_committed, ctx, events, outcomes, started))
                uow.commit()
            return outcomes
        except ConcurrentWrite:
            if attempt == MAX_ATTEMPTS:
                raise
    raise LedgerInvariantViolation("unreachable")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a batch's read-only first phase found: the events judged against the committed
    events, rated, and whether the whole batch can take the fast path (no event involves a
    hold and every end user has a wallet)."""

    events: Sequence[UsageEvent]
    judged: Triage
    rated: list[Rated]
    refused: dict[int, Refusal]
    fast: bool


def _prepare(
    reader: UnitOfWork,
    events: Sequence[UsageEvent],
    fingerprints: Sequence[Fingerprint],
    end_users: EndUserWallets | None,
) -> _Plan:
    """The batch's look-ups and rating, on committed rows, holding no lock. Nothing here is
    trusted by the write: a request id stored after this read fails the usage insert (the
    unique constraint) and the batch is decided again; a wallet that cannot pay, or one with
    something reserved, fails the guarded debit and the batch goes the careful way, which
    locks the wallets and reads their holds under those locks."""
    inputs = reader.usage.batch_inputs(
        {event.request_id for event in events},
        {(event.public_app_id, event.feature_key) for event in events},
        {(event.provider, event.model) for event in events},
    )
    judged = triage(events, fingerprints, inputs.stored)
    catalogue = _load_catalogue(reader, judged.fresh, end_users, inputs)
    rated, refused_rating = rate_events(judged.fresh, catalogue)
    fast = bool(rated) and all(item.event.hold_id is None and item.wallet_id is not None for item in rated)
    if fast and not inputs.hold_request_ids.isdisjoint(item.event.request_id for item in rated):
        fast = False
    return _Plan(events, judged, rated, judged.refused | refused_rating, fast)


def _post_planned(uow: UnitOfWork, plan: _Plan, account_ids: AccountIds | None) -> list[UsageOutcome]:
    """The batch's writes: the fast path when the plan allows it and every wallet can pay,
    else the careful path in this unit of work."""
    if plan.fast:
        fast = _fast_accept(uow, plan.rated)
        if fast is not None:
            accepted, moved = fast
            receipts = _write(uow, accepted, decided=(), moved=moved, cache=account_ids)
            return _outcomes(plan.events, plan.judged, receipts, {}, plan.refused)
    elif not plan.rated:  # nothing to post: duplicates and refusals only
        return _outcomes(plan.events, plan.judged, {}, {}, plan.refused)
    return _post_careful(uow, plan, account_ids)


def _tell_committed(
    ctx: ServiceContext, events: Sequence[UsageEvent], outcomes: Sequence[UsageOutcome], started: float
) -> None:
    labels = [(str(outcome.status), str(event.route_mode)) for event, outcome in zip(events, outcomes, strict=True)]
    ctx.signals.usage_batch(labels, seconds=time.perf_counter() - started)


def _post_careful(uow: UnitOfWork, plan: _Plan, account_ids: AccountIds | None) -> list[UsageOutcome]:
    """The careful way, from the plan's judged and rated events: lock the end users'
    wallets, then (under those locks) expire and match holds and decide each event, write.
    Holds are read only here, after the locks: a hold's state is guarded by its wallet's."""
    events, judged, rated = plan.events, plan.judged, plan.rated
    user_ids = sorted({item.end_user_id for item in rated if item.end_user_id is not None})
    wallets = {state.owner_id: state for state in uow.ledger.lock_wallets(OwnerScope.END_USER, user_ids)}
    # Holds: expire the locked wallets' overdue ones (only a wallet with something reserved
    # can have a held hold), then find what each event captures.
    reserving = [state.account_id for state in wallets.values() if state.reserved_units]
    released = release_expired(uow, reserving) if reserving else {}
    for state in wallets.values():
        state.reserved_units -= released.get(state.account_id, 0)
    hold_ids = {item.event.hold_id for item in rated if item.event.hold_id is not None}
    holds = match_holds(
        rated,
        uow.holds.by_request_ids({item.event.request_id for item in rated if item.event.hold_id is None}),
        uow.holds.by_ids(hold_ids) if hold_ids else {},
    )
    captured_before = {
        index: stored.receipt
        for index, request_id in holds.captured_by.items()
        if (stored := uow.usage.find([request_id]).get(request_id)) is not None
    }
    judged.repeats.update(holds.repeats)
    skip = holds.captured_by.keys() | holds.repeats.keys() | holds.refused.keys()
    accepted, refused_balance = decide([item for item in rated if item.index not in skip], wallets, holds.captures)
    receipts = _write(uow, accepted, decided=[state.account_id for state in wallets.values()], cache=account_ids)
    refused = plan.refused | holds.refused | refused_balance
    return _outcomes(events, judged, receipts, captured_before, refused)


def _fast_accept(uow: UnitOfWork, rated: Sequence[Rated]) -> tuple[list[Accepted], dict[str, int]] | None:
    """The common case in one guarded statement instead of lock-then-decide (the plan
    found that no event names a hold, every end user has a wallet, and no hold was placed
    with one of the request ids): every wallet, locked, has nothing reserved and can pay
    for ALL of its events in the batch. Then every event is accepted (debits only ever
    lower the balance, so if the last one is affordable so is each before it) and each
    wallet has already moved by its events' sum — the map returned with the accepted
    events. ``None``: nothing moved, decide the careful way."""
    debits: dict[str, int] = {}
    for item in rated:
        wallet = item.wallet_id or ""
        debits[wallet] = debits.get(wallet, 0) - item.amounts.retail_price_units
    states = uow.ledger.debit_wallets(OwnerScope.END_USER, debits)
    if states is None:
        return None
    by_wallet = {state.account_id: state for state in states}
    # Each event's balance after it: from the balance before the batch, in batch order.
    running = {wallet: by_wallet[wallet].balance_units - debit for wallet, debit in debits.items()}
    accepted: list[Accepted] = []
    for item in rated:
        wallet = item.wallet_id or ""
        running[wallet] -= item.amounts.retail_price_units
        accepted.append(Accepted(item, wallet, running[wallet]))
    moved = {wallet: debit for wallet, debit in debits.items() if debit}
    return accepted, moved


def _outcomes(
    events: Sequence[UsageEvent],
    judged: Triage,
    receipts: Mapping[int, UsageReceipt],
    captured_before: Mapping[int, UsageReceipt],
    refused: Mapping[int, Refusal],
) -> list[UsageOutcome]:
    outcomes: list[UsageOutcome] = []
    for index, event in enumerate(events):
        if index in receipts:
            outcome = UsageOutcome(event.request_id, UsageStatus.RECORDED, receipt=receipts[index])
        elif index in judged.duplicates:
            outcome = UsageOutcome(event.request_id, UsageStatus.DUPLICATE, receipt=judged.duplicates[index])
        elif index in captured_before:  # its hold was captured by another event: that receipt
            outcome = UsageOutcome(event.request_id, UsageStatus.DUPLICATE, receipt=captured_before[index])
        elif index in refused:
            outcome = UsageOutcome(event.request_id, UsageStatus.REJECTED, error=refused[index])
        elif index in judged.repeats:
            # A repeat gets its first occurrence's outcome; a recorded one it duplicates.
            first = outcomes[judged.repeats[index]]
            status = UsageStatus.DUPLICATE if first.status is UsageStatus.RECORDED else first.status
            outcome = replace(first, request_id=event.request_id, status=status)
        else:
            raise LedgerInvariantViolation(f"usage event {index} of the batch was never decided")
        outcomes.append(outcome)
    return outcomes


def _load_catalogue(
    uow: UnitOfWork, fresh: Sequence[Fresh], known: EndUserWallets | None, inputs: BatchInputs
) -> Catalogue:
    """The catalogue the fresh events are rated with: apps, features and prices as the
    batch read them (``inputs``); end users and their wallets from ``known`` where it has
    them, else read here (and remembered: committed rows)."""
    if not fresh:
        return Catalogue({}, {}, {}, {})
    apps = inputs.apps
    users: dict[tuple[str, str], str] = {}
    wallets: dict[str, str] = {}
    missing: set[tuple[str, str]] = set()
    for item in fresh:
        app = apps.get(item.event.public_app_id)
        if app is None:
            continue
        key = (app.id, item.event.external_user_id)
        cached = None if known is None else known.get(key)
        if cached is None:
            missing.add(key)
        else:
            users[key], wallets[cached[0]] = cached
    for key, (end_user_id, wallet_id) in uow.usage.end_user_wallets(missing).items() if missing else ():
        users[key] = end_user_id
        if wallet_id is not None:
            wallets[end_user_id] = wallet_id
            if known is not None:  # read back as committed rows: safe to remember
                known.remember(key, (end_user_id, wallet_id))
    return Catalogue(apps=apps, features=inputs.features, prices=inputs.prices, end_users=users, wallets=wallets)


def _write(
    uow: UnitOfWork,
    accepted: Sequence[Accepted],
    *,
    decided: Sequence[str],
    cache: AccountIds | None,
    moved: Mapping[str, int] | None = None,
) -> dict[int, UsageReceipt]:
    """Post the accepted events and store their usage rows; their receipts by batch index."""
    if not accepted:
        return {}
    developers = sorted({(OwnerScope.DEVELOPER.value, item.rated.app.developer_id) for item in accepted})
    ids = _credit_accounts(uow, developers, cache)
    owners: list[tuple[str, str]] = []  # each event's (end user, wallet)
    transactions: list[Transaction | None] = []  # None: a call that moves no money
    for item in accepted:
        rated = item.rated
        end_user_id, wallet_id = rated.end_user_id, item.wallet_id
        if end_user_id is None:  # a free call of a new end user: create the user and wallet
            end_user_id = uow.catalog.ensure_end_user(rated.app.id, rated.event.external_user_id)
        if wallet_id is None:
            wallet_id = uow.ledger.ensure(OwnerScope.END_USER, end_user_id)
        developer = ids[(OwnerScope.DEVELOPER.value, rated.app.developer_id)]
        accounts = UsageAccounts(wallet_id, developer, ids[_PLATFORM], ids[_PROVIDER_COST])
        owners.append((end_user_id, wallet_id))
        transaction = usage_transaction(
            rated.amounts, rated.event.route_mode, accounts, request_id=rated.event.request_id
        )
        if transaction is not None and item.uncollected_units:
            transaction = with_shortfall(
                transaction,
                wallet_id=wallet_id,
                uncollected_account_id=uow.ledger.ensure(OwnerScope.SYSTEM, SystemAccount.UNCOLLECTED_USAGE.value),
                uncollected_units=item.uncollected_units,
            )
        transactions.append(transaction)
    # Captured holds end and release their reservation before the wallets are debited.
    release: dict[str, int] = {}
    captures: dict[str, str] = {}  # hold id → the request id that captures it
    capturing = 0
    for item in accepted:
        if item.hold is not None and item.wallet_id is not None:
            captures[item.hold.id] = item.rated.event.request_id
            capturing += 1
            release[item.wallet_id] = release.get(item.wallet_id, 0) + item.hold.amount_units
    # Each hold ends once: two events of the batch naming one hold, or a hold no longer
    # held under its wallet's lock, is a broken invariant, not a refusal.
    if capturing and uow.holds.capture_many(captures) != capturing:
        raise LedgerInvariantViolation("a captured hold changed under its wallet lock")
    if release:  # one statement for the batch's captured reservations
        uow.ledger.change_reserved_many({wallet_id: -units for wallet_id, units in release.items()})
    # The ledger moves each account once, by the batch's net change.
    posted = iter(uow.ledger.post_many([t for t in transactions if t is not None], decided=decided, moved=moved))

    receipts: dict[int, UsageReceipt] = {}
    rows: list[NewUsage] = []
    for item, (end_user_id, wallet_id), transaction in zip(accepted, owners, transactions, strict=True):
        rated, event, amounts = item.rated, item.rated.event, item.rated.amounts
        receipt = UsageReceipt(
            request_id=event.request_id,
            usage_event_id=new_id(),
            transaction_id=None if transaction is None else next(posted),
            route_mode=event.route_mode,
            upstream_cost_units=amounts.upstream_cost_units,
            retail_price_units=amounts.retail_price_units,
            channel_revenue_units=amounts.channel_revenue_units,
            platform_revenue_units=amounts.platform_revenue_units,
            gateway_fee_units=amounts.gateway_fee_units,
            end_user_wallet_id=wallet_id,
            end_user_balance_units=item.balance_after_units,
            created_at=uow.now,
            hold_id=None if item.hold is None else item.hold.id,  # SPEC §18: what was captured
            uncollected_units=item.uncollected_units,
        )
        receipts[rated.index] = receipt
        rows.append(
            NewUsage(
                receipt=receipt,
                request_hash=rated.fresh.fingerprint.digest,
                app_id=rated.app.id,
                public_app_id=event.public_app_id,
                end_user_id=end_user_id,
                feature_key=event.feature_key,
                provider=event.provider,
                model=event.model,
                input_tokens=event.input_tokens,
                output_tokens=event.output_tokens,
                cached_tokens=event.cached_tokens,
                rating_snapshot=rated.snapshot,
            )
        )
    uow.usage.add_many(rows)
    return receipts


def _credit_accounts(
    uow: UnitOfWork, developers: list[tuple[str, str]], cache: AccountIds | None
) -> dict[tuple[str, str], str]:
    """(scope, owner) → account id for the platform, provider-cost and developer accounts,
    each created if missing."""
    keys = [_PLATFORM, _PROVIDER_COST, *developers]
    found: dict[tuple[str, str], str] = {}
    if cache is not None:
        for key in keys:
            cached = cache.get(key)
            if cached is not None:
                found[key] = cached
    missing = [key for key in keys if key not in found]
    if missing:
        existing = uow.ledger.ids_for(missing)
        found.update(existing)
        for scope, owner_id in missing:
            if (scope, owner_id) not in found:
                found[(scope, owner_id)] = uow.ledger.ensure(OwnerScope(scope), owner_id)
        if cache is not None:
            # Only ids of rows that already existed: an account created by this batch is
            # not committed yet and vanishes if the batch rolls back (then retries).
            for key, account_id in existing.items():
                cache.remember(key, account_id)
    return found
