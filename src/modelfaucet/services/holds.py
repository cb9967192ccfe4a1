"""Holds (SPEC §18): place and void batches of holds, expire the ones past their time.

The usage event captures a hold (:mod:`.record_usage`); this module places, voids and
expires them. :func:`apply_holds` takes a batch mixing placements and voids (the hold
engine, :mod:`.hold_engine`, groups concurrent callers into one) and follows load → decide
→ write in ONE unit of work: it locks every end-user wallet of the batch once, in id order
(``uow.ledger.lock_wallets``) before it touches a hold row, so wallets are always locked
before holds and concurrent placers, capturers and voiders queue on the wallet row instead
of deadlocking; it decides in memory, then moves each wallet's reserved amount once by the
batch's net change (``uow.ledger.change_reserved_many``, one statement). A hold's amount is
reserved on the wallet for as long as it is held: reserved = open holds + open payouts,
and available = balance − reserved, everywhere.

Expiry is lazy and swept: every write that locks an end user's wallet first ends its
overdue holds in the same unit of work (:func:`release_expired` for the hold and usage
batches, :func:`expire_overdue_on` for adjustments, payouts, top-up credits and Stripe
refund/dispute debits), and :func:`expire_due_holds` is the periodic sweep the API process
runs in the background.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from ..domain.catalog import APP_NOT_FOUND, FEATURE_NOT_FOUND
from ..domain.holds import HOLD_NOT_FOUND, HoldStatus, require_move
from ..domain.identity import external_user_hash, new_id
from ..domain.ledger import AccountState, OwnerScope
from ..domain.money import format_usd
from ..domain.outcomes import (
    Forbidden,
    IdempotencyConflict,
    InsufficientBalance,
    LedgerInvariantViolation,
    NotFound,
    Refusal,
)
from .context import ServiceContext
from .idempotency import request_digest
from .repositories import BillableApp, HoldRecord
from .unit_of_work import ConcurrentWrite, UnitOfWork

MAX_ATTEMPTS = 4
SWEEP_BATCH = 500


@dataclass(frozen=True, slots=True)
class PlaceHold:
    """The command: reserve ``amount_units`` of the end user's wallet for ``ttl_seconds``."""

    request_id: str
    public_app_id: str
    external_user_id: str
    feature_key: str
    amount_units: int
    ttl_seconds: int

    def fingerprint(self) -> dict[str, Any]:
        return {
            "public_app_id": self.public_app_id,
            "external_user_id": external_user_hash(self.public_app_id, self.external_user_id),
            "feature_key": self.feature_key,
            "amount_units": self.amount_units,
            "ttl_seconds": self.ttl_seconds,
        }


@dataclass(frozen=True, slots=True)
class HoldOutcome:
    """One placement: the hold (``created`` False when the request id was seen before with
    the same body) and the wallet's available balance after it, or the refusal."""

    request_id: str
    hold: HoldRecord | None = None
    available_units: int = 0
    created: bool = False
    error: Refusal | None = None


@dataclass(frozen=True, slots=True)
class VoidHold:
    """The command: release the held hold ``hold_id``."""

    hold_id: str


@dataclass(frozen=True, slots=True)
class VoidOutcome:
    """One void: the hold as it stands after it (``released``), or the refusal."""

    hold_id: str
    hold: HoldRecord | None = None
    error: Refusal | None = None


HoldCommand = PlaceHold | VoidHold
HoldResult = HoldOutcome | VoidOutcome


def apply_holds(ctx: ServiceContext, commands: Sequence[HoldCommand]) -> list[HoldResult]:
    """Place and void ``commands`` in ONE unit of work (the hold engine's batch); one
    outcome per command, in order. A refusal is that command's outcome, never the batch's."""
    if not commands:
        return []
    digests = [request_digest(c.fingerprint()) if isinstance(c, PlaceHold) else "" for c in commands]
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with ctx.unit_of_work() as uow:
                outcomes = _apply(uow, commands, digests)
                uow.commit()
            return outcomes
        except ConcurrentWrite:
            if attempt == MAX_ATTEMPTS:
                raise
    raise LedgerInvariantViolation("unreachable")  # pragma: no cover


def place_holds(ctx: ServiceContext, commands: Sequence[PlaceHold]) -> list[HoldOutcome]:
    """Place ``commands`` in one unit of work; one outcome per command, in order."""
    return [outcome for outcome in apply_holds(ctx, commands) if isinstance(outcome, HoldOutcome)]


def void_hold(ctx: ServiceContext, hold_id: str) -> HoldRecord:
    """Release a held hold (``released``). Voiding a released hold again answers it unchanged;
    a captured or expired one is ``invalid_state``; an unknown id ``not_found``."""
    [outcome] = apply_holds(ctx, [VoidHold(hold_id)])
    return void_result(outcome)


def void_result(outcome: HoldResult) -> HoldRecord:
    """The released hold of a void's outcome, or its refusal raised."""
    if not isinstance(outcome, VoidOutcome):  # pragma: no cover - a void answers a VoidOutcome
        raise LedgerInvariantViolation("a void was answered as a placement")
    if outcome.error is not None:
        raise outcome.error
    if outcome.hold is None:  # pragma: no cover - an outcome without an error has its hold
        raise LedgerInvariantViolation("a void without its hold")
    return outcome.hold


def _triage(
    commands: Sequence[HoldCommand], digests: Sequence[str], stored: dict[str, HoldRecord]
) -> tuple[dict[int, HoldOutcome], list[int], dict[str, int]]:
    """Idempotency first: a placement whose request id is known (stored, or earlier in the
    batch) with another body is a conflict; with the same body it is answered later.
    Returns the conflicts, the fresh placements' indexes, and each request id's first index."""
    conflicts: dict[int, HoldOutcome] = {}
    fresh: list[int] = []
    first_seen: dict[str, int] = {}
    for index, (command, digest) in enumerate(zip(commands, digests, strict=True)):
        if not isinstance(command, PlaceHold):
            continue
        found = stored.get(command.request_id)
        earlier = first_seen.get(command.request_id)
        if found is not None or earlier is not None:
            same = found.request_hash == digest if found is not None else digests[earlier or 0] == digest
            if not same:
                conflicts[index] = HoldOutcome(
                    command.request_id,
                    error=IdempotencyConflict(
                        "This request_id was already used for a different hold.",
                        details={"request_id": command.request_id},
                    ),
                )
            continue  # an equal repeat is answered below, once its hold is known
        first_seen[command.request_id] = index
        fresh.append(index)
    return conflicts, fresh, first_seen


def _apply(uow: UnitOfWork, commands: Sequence[HoldCommand], digests: Sequence[str]) -> list[HoldResult]:
    places = [c for c in commands if isinstance(c, PlaceHold)]
    stored = uow.holds.by_request_ids({c.request_id for c in places})
    outcomes: dict[int, HoldResult] = {}
    conflicts, fresh, first_seen = _triage(commands, digests, stored)
    outcomes.update(conflicts)
    targets = uow.holds.by_ids({c.hold_id for c in commands if isinstance(c, VoidHold)})

    # 1. load the apps, features and end users of the fresh placements (apps and features
    # in the usage batch's one read: no request ids, no prices).
    usage = uow.usage
    placing = [command for index in fresh if isinstance(command := commands[index], PlaceHold)]
    inputs = usage.batch_inputs((), {(c.public_app_id, c.feature_key) for c in placing}, ())
    apps, features = inputs.apps, inputs.features
    known = [(apps[c.public_app_id].id, c) for c in placing if c.public_app_id in apps]
    users = usage.end_user_ids({(app_id, command.external_user_id) for app_id, command in known})

    # 2. lock every wallet of the batch once, in id order; then expire their overdue holds
    # (in memory: the reservation they free joins the batch's one write per wallet).
    owners = set(users.values()) | {hold.end_user_id for hold in targets.values()}
    locked = uow.ledger.lock_wallets(OwnerScope.END_USER, sorted(owners))
    if targets:
        # Read the voided holds again under their wallets' locks: a capture or void that
        # committed while this batch waited for a lock has ended them (READ COMMITTED).
        targets = uow.holds.by_ids(targets.keys())
    running = {state.account_id: state for state in locked}
    by_owner = {state.owner_id: state for state in locked}
    # Only a wallet with something reserved can have a held hold (reserved = its held holds).
    expired = _end_overdue(uow, [account_id for account_id, state in running.items() if state.reserved_units])
    delta: dict[str, int] = {}
    for hold in expired:
        running[hold.account_id].reserved_units -= hold.amount_units
        delta[hold.account_id] = delta.get(hold.account_id, 0) - hold.amount_units
    ended = {hold.id: replace(hold, status=HoldStatus.EXPIRED, ended_at=uow.now) for hold in expired}

    # 3. decide, in order, against the running reserved amounts.
    placed: list[HoldRecord] = []
    voided: list[str] = []
    for index, command in enumerate(commands):
        if index in outcomes:
            continue
        if isinstance(command, VoidHold):
            outcomes[index], released = _decide_void(
                command, targets=targets, ended=ended, running=running, delta=delta, now=uow.now
            )
            if released:
                voided.append(command.hold_id)
            continue
        if first_seen.get(command.request_id) != index:
            continue  # a repeat: answered below
        outcome, new_hold = _decide_place(
            command, digests[index], apps=apps, features=features, users=users, by_owner=by_owner, now=uow.now
        )
        outcomes[index] = outcome
        if new_hold is not None:
            delta[new_hold.account_id] = delta.get(new_hold.account_id, 0) + new_hold.amount_units
            placed.append(new_hold)

    # 4. write once: hold rows end in one statement per status, each wallet's reserved
    # moves once by the batch's net change (one statement), then the new hold rows go in.
    if uow.holds.end_many([hold.id for hold in expired], HoldStatus.EXPIRED) != len(expired):
        raise LedgerInvariantViolation("an overdue hold changed under its wallet lock")
    if expired:
        uow.after_commit(partial(uow.signals.holds_expired, len(expired)))
    if uow.holds.end_many(voided, HoldStatus.RELEASED) != len(voided):
        raise LedgerInvariantViolation("a voided hold changed under its wallet lock")
    uow.ledger.change_reserved_many(delta)
    uow.holds.add_many(placed)

    # Repeats of a stored request id answer the stored hold; repeats inside the batch, the
    # first occurrence's outcome.
    result: list[HoldResult] = []
    for index, command in enumerate(commands):
        found = outcomes.get(index)
        if found is None and isinstance(command, PlaceHold):
            stored_hold = stored.get(command.request_id)
            if stored_hold is not None:
                current = ended.get(stored_hold.id, stored_hold)
                found = HoldOutcome(command.request_id, current, _available(uow, running, current.account_id))
            else:
                first = outcomes[first_seen[command.request_id]]
                found = replace(first, created=False) if isinstance(first, HoldOutcome) else first
        if found is None:  # pragma: no cover - every command is decided above
            raise LedgerInvariantViolation(f"hold command {index} of the batch was never decided")
        result.append(found)
    return result


def _decide_void(
    command: VoidHold,
    *,
    targets: dict[str, HoldRecord],
    ended: dict[str, HoldRecord],
    running: dict[str, AccountState],
    delta: dict[str, int],
    now: datetime,
) -> tuple[VoidOutcome, bool]:
    """A void's outcome, and whether it releases the hold now (its reservation leaves the
    running wallet and joins ``delta``)."""
    hold = ended.get(command.hold_id) or targets.get(command.hold_id)
    if hold is None:
        refusal = NotFound(HOLD_NOT_FOUND, details={"hold_id": command.hold_id})
        return VoidOutcome(command.hold_id, error=refusal), False
    if hold.status is HoldStatus.RELEASED:  # voided before (or earlier in this batch): unchanged
        return VoidOutcome(command.hold_id, hold), False
    try:
        require_move(hold.status, HoldStatus.RELEASED)
    except Refusal as refusal:
        return VoidOutcome(command.hold_id, error=refusal), False
    released = replace(hold, status=HoldStatus.RELEASED, ended_at=now)
    ended[hold.id] = released
    running[hold.account_id].reserved_units -= hold.amount_units
    delta[hold.account_id] = delta.get(hold.account_id, 0) - hold.amount_units
    return VoidOutcome(command.hold_id, released), True


def _decide_place(
    command: PlaceHold,
    digest: str,
    *,
    apps: Mapping[str, BillableApp],
    features: Collection[tuple[str, str]],
    users: Mapping[tuple[str, str], str],
    by_owner: Mapping[str, AccountState],
    now: datetime,
) -> tuple[HoldOutcome, HoldRecord | None]:
    """A placement's outcome and its new hold (None when refused); a placed hold's amount
    joins the running wallet's reserved."""
    app = apps.get(command.public_app_id)
    if app is None:
        refusal: Refusal = NotFound(APP_NOT_FOUND, details={"public_app_id": command.public_app_id})
        return HoldOutcome(command.request_id, error=refusal), None
    if not app.active:
        refusal = Forbidden("App is not active.", details={"public_app_id": command.public_app_id})
        return HoldOutcome(command.request_id, error=refusal), None
    if (app.id, command.feature_key) not in features:
        refusal = NotFound(FEATURE_NOT_FOUND, details={"feature_key": command.feature_key})
        return HoldOutcome(command.request_id, error=refusal), None
    user_id = users.get((app.id, command.external_user_id))
    state = None if user_id is None else by_owner.get(user_id)
    available = 0 if state is None else state.available_units
    if state is None or available < command.amount_units:
        refusal = InsufficientBalance(
            "Wallet does not have enough available balance for this hold.",
            details={"available_usd": format_usd(available), "requested_usd": format_usd(command.amount_units)},
        )
        return HoldOutcome(command.request_id, error=refusal), None
    state.reserved_units += command.amount_units
    hold = HoldRecord(
        id=new_id(),
        request_id=command.request_id,
        request_hash=digest,
        account_id=state.account_id,
        app_id=app.id,
        end_user_id=state.owner_id,
        amount_units=command.amount_units,
        status=HoldStatus.HELD,
        created_at=now,
        expires_at=now + timedelta(seconds=command.ttl_seconds),
    )
    return HoldOutcome(command.request_id, hold, state.available_units, created=True), hold


def _available(uow: UnitOfWork, running: Mapping[str, AccountState], account_id: str) -> int:
    state = running.get(account_id) or uow.ledger.get(account_id)
    return 0 if state is None else state.available_units


def _end_overdue(uow: UnitOfWork, wallets: Collection[str]) -> list[HoldRecord]:
    """The held holds past their time on these (already locked) wallets."""
    return uow.holds.due_on(wallets) if wallets else []


def release_expired(uow: UnitOfWork, account_ids: Collection[str]) -> dict[str, int]:
    """Expire the held holds past their time on these (already locked) wallets and release
    their reservations (one statement each); the released amount by wallet."""
    due = _end_overdue(uow, account_ids)
    if not due:
        return {}
    if uow.holds.end_many([hold.id for hold in due], HoldStatus.EXPIRED) != len(due):
        raise LedgerInvariantViolation("an overdue hold changed under its wallet lock")
    released: dict[str, int] = {}
    for hold in due:
        released[hold.account_id] = released.get(hold.account_id, 0) + hold.amount_units
    uow.ledger.change_reserved_many({account_id: -units for account_id, units in released.items()})
    # counted only if this unit of work commits (a refused void rolls it back)
    uow.after_commit(partial(uow.signals.holds_expired, len(due)))
    return released


def expire_overdue_on(uow: UnitOfWork, wallet: AccountState) -> AccountState:
    """Lazy expiry (SPEC §18) for any write that touches a wallet: call it right after the
    wallet is locked, in the same unit of work. An end user's overdue holds expire and
    release their reservation, so the write sees the true ``available``; the wallet as it
    stands after. Other wallets carry no holds and are answered unchanged."""
    if wallet.owner_scope is not OwnerScope.END_USER:
        return wallet
    released = release_expired(uow, [wallet.account_id]).get(wallet.account_id, 0)
    return replace(wallet, reserved_units=wallet.reserved_units - released) if released else wallet


def expire_overdue_before_credit(uow: UnitOfWork, account_id: str, *, has_due: bool | None = None) -> None:
    """Lazy expiry for a write that only credits the wallet (a top-up, whose balances move
    at the commit): a credit needs no true ``available``, so the wallet is locked and its
    overdue holds expire only if it has any. Holds become overdue with time, never by
    another writer, so finding none without the lock is as good as with it. ``has_due``:
    already read in this unit of work (with the locked top-up); None: read it here."""
    if has_due is None:
        has_due = bool(uow.holds.due_on([account_id]))
    if has_due:
        expire_overdue_on(uow, uow.ledger.require(account_id, for_update=True))


def expire_due_holds(ctx: ServiceContext, *, limit: int = SWEEP_BATCH) -> int:
    """The periodic sweep: expire up to about ``limit`` holds past their time (all the due
    holds of the wallets it picks); the amount released, in units."""
    with ctx.unit_of_work() as uow:
        due = uow.holds.due(limit=limit)
        if not due:
            return 0
        uow.ledger.lock_wallets(OwnerScope.END_USER, sorted({hold.end_user_id for hold in due}))
        released = release_expired(uow, {hold.account_id for hold in due})
        uow.commit()
    return sum(released.values())
