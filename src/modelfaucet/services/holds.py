"""Holds (SPEC §18): place a batch of holds, void one, expire the ones past their time.

The usage event captures a hold (:mod:`.record_usage`); this module places, voids and
expires them. Every operation follows load → decide → write in one unit of work, and
locks the end user's wallet (``uow.ledger.lock_wallets``) before it touches a hold row, so
wallets are always locked before holds and concurrent placers, capturers and voiders
queue on the wallet row instead of deadlocking. A hold's amount is reserved on the wallet
(``uow.ledger.change_reserved``) for as long as it is held: reserved = open holds + open
payouts, and available = balance − reserved, everywhere.

Expiry is lazy and swept: :func:`release_expired` ends the expired holds of the wallets an
operation locked (every hold placement and every usage batch runs it first), and
:func:`expire_due_holds` is the periodic sweep the API process runs in the background.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
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
from .repositories import HoldRecord
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


def place_holds(ctx: ServiceContext, commands: Sequence[PlaceHold]) -> list[HoldOutcome]:
    """Place ``commands`` in one unit of work; one outcome per command, in order."""
    if not commands:
        return []
    digests = [request_digest(command.fingerprint()) for command in commands]
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with ctx.unit_of_work() as uow:
                outcomes = _place(uow, commands, digests)
                uow.commit()
            return outcomes
        except ConcurrentWrite:
            if attempt == MAX_ATTEMPTS:
                raise
    raise LedgerInvariantViolation("unreachable")  # pragma: no cover


def _place(uow: UnitOfWork, commands: Sequence[PlaceHold], digests: Sequence[str]) -> list[HoldOutcome]:
    outcomes: dict[int, HoldOutcome] = {}
    # 1. idempotency first: a known request id answers its hold, or a conflict.
    stored = uow.holds.by_request_ids({command.request_id for command in commands})
    fresh: list[int] = []
    first_seen: dict[str, int] = {}
    for index, (command, digest) in enumerate(zip(commands, digests, strict=True)):
        found = stored.get(command.request_id)
        earlier = first_seen.get(command.request_id)
        if found is not None or earlier is not None:
            same = found.request_hash == digest if found is not None else digests[earlier or 0] == digest
            if not same:
                outcomes[index] = HoldOutcome(
                    command.request_id,
                    error=IdempotencyConflict(
                        "This request_id was already used for a different hold.",
                        details={"request_id": command.request_id},
                    ),
                )
            continue  # an equal repeat is answered below, once its hold is known
        first_seen[command.request_id] = index
        fresh.append(index)

    # 2. load the apps, features and end users; lock the wallets; release expired holds.
    usage = uow.usage
    apps = usage.billable_apps({commands[i].public_app_id for i in fresh})
    known = [(apps[commands[i].public_app_id].id, commands[i]) for i in fresh if commands[i].public_app_id in apps]
    features = usage.feature_pricing({(app_id, command.feature_key) for app_id, command in known})
    users = usage.end_user_ids({(app_id, command.external_user_id) for app_id, command in known})
    wallets = {
        state.owner_id: state for state in uow.ledger.lock_wallets(OwnerScope.END_USER, sorted(set(users.values())))
    }
    released = release_expired(uow, [state.account_id for state in wallets.values()])
    running = {
        user_id: replace(state, reserved_units=state.reserved_units - released.get(state.account_id, 0))
        for user_id, state in wallets.items()
    }

    # 3. decide, in order, against the running reserved amounts.
    placed: list[HoldRecord] = []
    for index in fresh:
        command = commands[index]
        app = apps.get(command.public_app_id)
        refusal: Refusal | None = None
        state: AccountState | None = None
        if app is None:
            refusal = NotFound(APP_NOT_FOUND, details={"public_app_id": command.public_app_id})
        elif not app.active:
            refusal = Forbidden("App is not active.", details={"public_app_id": command.public_app_id})
        elif (app.id, command.feature_key) not in features:
            refusal = NotFound(FEATURE_NOT_FOUND, details={"feature_key": command.feature_key})
        else:
            user_id = users.get((app.id, command.external_user_id))
            state = None if user_id is None else running.get(user_id)
            available = 0 if state is None else state.available_units
            if state is None or available < command.amount_units:
                refusal = InsufficientBalance(
                    "Wallet does not have enough available balance for this hold.",
                    details={"available_usd": format_usd(available), "requested_usd": format_usd(command.amount_units)},
                )
        if refusal is not None or app is None or state is None:
            outcomes[index] = HoldOutcome(command.request_id, error=refusal)
            continue
        state.reserved_units += command.amount_units
        hold = HoldRecord(
            id=new_id(),
            request_id=command.request_id,
            request_hash=digests[index],
            account_id=state.account_id,
            app_id=app.id,
            end_user_id=state.owner_id,
            amount_units=command.amount_units,
            status=HoldStatus.HELD,
            created_at=uow.now,
            expires_at=uow.now + timedelta(seconds=command.ttl_seconds),
        )
        placed.append(hold)
        outcomes[index] = HoldOutcome(command.request_id, hold, state.available_units, created=True)

    # 4. write once: each wallet's reserved moves by its batch's sum, then the hold rows.
    reserve: dict[str, int] = {}
    for hold in placed:
        reserve[hold.account_id] = reserve.get(hold.account_id, 0) + hold.amount_units
    for account_id in sorted(reserve):
        uow.ledger.change_reserved(account_id, reserve[account_id])
    uow.holds.add_many(placed)

    # Repeats of a stored request id answer the stored hold; repeats inside the batch, the
    # first occurrence's outcome.
    result: list[HoldOutcome] = []
    for index, command in enumerate(commands):
        outcome = outcomes.get(index)
        if outcome is None:
            stored_hold = stored.get(command.request_id)
            if stored_hold is not None:
                outcome = HoldOutcome(command.request_id, stored_hold, _available(uow, stored_hold.account_id))
            else:
                outcome = replace(outcomes[first_seen[command.request_id]], created=False)
        result.append(outcome)
    return result


def _available(uow: UnitOfWork, account_id: str) -> int:
    state = uow.ledger.get(account_id)
    return 0 if state is None else state.available_units


def release_expired(uow: UnitOfWork, account_ids: Collection[str]) -> dict[str, int]:
    """Expire the held holds past their time on these (already locked) wallets and release
    their reservations; the released amount by wallet."""
    released: dict[str, int] = {}
    for hold in uow.holds.due_on(account_ids):
        if uow.holds.end(hold.id, HoldStatus.EXPIRED):
            released[hold.account_id] = released.get(hold.account_id, 0) + hold.amount_units
    for account_id in sorted(released):
        uow.ledger.change_reserved(account_id, -released[account_id])
    return released


def void_hold(ctx: ServiceContext, hold_id: str) -> HoldRecord:
    """Release a held hold (``released``). Voiding a released hold again answers it unchanged;
    a captured or expired one is ``invalid_state``; an unknown id ``not_found``."""
    with ctx.unit_of_work() as uow:
        found = uow.holds.by_ids([hold_id]).get(hold_id)
        if found is None:
            raise NotFound(HOLD_NOT_FOUND, details={"hold_id": hold_id})
        uow.ledger.lock_wallets(OwnerScope.END_USER, [found.end_user_id])
        release_expired(uow, [found.account_id])
        hold = uow.holds.by_ids([hold_id])[hold_id]
        if hold.status is not HoldStatus.HELD:
            # The wallet's lazy expiry above stays (SPEC §18), whatever this void answers.
            uow.commit()
            if hold.status is HoldStatus.RELEASED:
                return hold
            require_move(hold.status, HoldStatus.RELEASED)
        if not uow.holds.end(hold.id, HoldStatus.RELEASED):
            raise LedgerInvariantViolation(f"hold {hold.id} changed under its wallet lock")
        uow.ledger.change_reserved(hold.account_id, -hold.amount_units)
        uow.commit()
        return replace(hold, status=HoldStatus.RELEASED, ended_at=uow.now)


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
