"""run_mock_payouts: open one pending payout per developer who can be paid (SPEC §9).

A payout is a pending transfer. For every active developer whose *payable* balance (see
:func:`~modelfaucet.domain.payouts.payable_units`: available funds minus revenue still
within the hold period) reaches the threshold (greater than 0) and the minimum payout
amount ``PAYOUT_MINIMUM_USD`` (whatever threshold the caller names), and who has no open
payout, run-mock records a ``pending`` payout and *reserves* its amount on the developer
wallet. No money moves, but
no later debit (chargeback, adjustment) can spend it: the balance mover never lets a
wallet's balance go below its reservation. Review (:mod:`.review_payout`) then posts or
voids it.

Concurrency: each candidate wallet is locked (``FOR UPDATE``; SQLite serialises writers
anyway) in wallet-id order and the decision is taken under the lock, so a racing run-mock
that got there first has committed its payout and is seen; the partial unique index
``uq_payouts_open_per_developer`` is the last line (``uow.payouts.add`` then inserts
nothing). The audit entries are declared as the loop goes; the unit of work writes them
last, after every wallet lock is taken.
"""

from __future__ import annotations

from datetime import timedelta

from ..domain.audit import AuditEntry
from ..domain.identity import new_id
from ..domain.money import format_usd
from ..domain.outcomes import InvalidRequest
from ..domain.payouts import PayoutStatus, payable_units
from .context import Actor, ServiceContext
from .holds import expire_overdue_on
from .repositories import PAYOUT_REFERENCE_TYPE, PayoutCandidate, PayoutRecord
from .unit_of_work import UnitOfWork

MOCK_PROVIDER = "mock"


def run_mock_payouts(ctx: ServiceContext, *, actor: Actor, threshold_units: int | None = None) -> list[PayoutRecord]:
    """Open and reserve one pending payout per eligible developer; return the new payouts.

    Refused: a threshold that is not greater than 0 (``InvalidRequest``, nothing written).
    """
    threshold = ctx.settings.payout_threshold_units if threshold_units is None else threshold_units
    if threshold <= 0:
        raise InvalidRequest("threshold_usd must be greater than 0.", details={"field": "threshold_usd"})
    # A payout is never smaller than the configured minimum (sub-cent payouts cost more than they pay).
    threshold = max(threshold, ctx.settings.payout_minimum_units)
    hold = timedelta(days=ctx.settings.payout_hold_days)
    with ctx.unit_of_work() as uow:
        opened: list[PayoutRecord] = []
        for candidate in uow.payouts.candidates():
            payout = _open_payout(uow, candidate, threshold_units=threshold, hold=hold, actor=actor)
            if payout is not None:
                opened.append(payout)
        uow.commit()
    return opened


def _open_payout(
    uow: UnitOfWork, candidate: PayoutCandidate, *, threshold_units: int, hold: timedelta, actor: Actor
) -> PayoutRecord | None:
    """The developer's new payout, reserved; None if they are not due one now."""
    # Lock the wallet, then decide on what is committed now.
    # (A developer wallet carries no holds today; the lazy expiry keeps the rule uniform.)
    wallet = expire_overdue_on(uow, uow.ledger.require(candidate.account_id, for_update=True))
    if uow.payouts.has_open(candidate.developer_id):
        return None
    held = uow.payouts.credited_since(wallet.account_id, since=uow.now - hold) if hold else 0
    amount = payable_units(balance_units=wallet.balance_units, reserved_units=wallet.reserved_units, held_units=held)
    if amount < threshold_units:
        return None
    payout = PayoutRecord(
        id=new_id(),
        developer_id=candidate.developer_id,
        account_id=wallet.account_id,
        amount_units=amount,
        status=PayoutStatus.PENDING,
        provider=MOCK_PROVIDER,
        provider_payout_id=None,
        created_by=actor.name,
        approved_by=None,
        operator_note=None,
        transaction_id=None,
        created_at=uow.now,
        updated_at=uow.now,
    )
    if not uow.payouts.add(payout):
        return None  # another run-mock opened one first (the unique index said so)
    uow.ledger.change_reserved(wallet.account_id, amount)
    uow.audit.add(
        AuditEntry(
            actor=actor.name,
            action="payout.create",
            resource_type=PAYOUT_REFERENCE_TYPE,
            resource_id=payout.id,
            after_status=str(PayoutStatus.PENDING),
            amount_units=amount,
            request_id=actor.request_id,
            details={
                "developer_id": candidate.developer_id,
                "wallet_id": wallet.account_id,
                "threshold_usd": format_usd(threshold_units),
                "held_usd": format_usd(held),
            },
        )
    )
    return payout
