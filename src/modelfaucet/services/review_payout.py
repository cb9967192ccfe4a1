"""review_payout: approve, mark paid, cancel or mark failed a payout (SPEC §9).

Every action follows :func:`modelfaucet.domain.payouts.decide` (one table). Checks, in
order: the payout exists (404), the table allows the action on its status (409
``invalid_state``; a repeated approve / mark-paid is *unchanged* and answers the payout as
it is, writing nothing), and for an approval, maker-checker (403 when the operator who
opened the payout approves it and ``PAYOUT_REQUIRE_DISTINCT_APPROVER`` is on).

Then, in one unit of work with the payout row locked: leaving an open status releases the
reservation (``uow.ledger.change_reserved``); mark-paid posts the payment, developer
wallet → payout clearing, reason ``mock_payout_paid`` (``uow.ledger.post``); the payout is
stored only if its status is still the one decided on, and the audit entry is declared.
Eight concurrent mark-paid calls therefore debit the wallet once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from ..config import Settings
from ..domain.audit import AuditEntry
from ..domain.ledger import OwnerScope, Reason, SystemAccount, Transaction
from ..domain.outcomes import Forbidden, InvalidState, LedgerInvariantViolation
from ..domain.payouts import Decision, Effect, PayoutAction, decide, refusal_message
from .context import Actor, ServiceContext
from .repositories import PAYOUT_REFERENCE_TYPE, PayoutRecord
from .unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class ReviewPayout:
    """The command: an operator's action on one payout, with an optional note."""

    payout_id: str
    action: PayoutAction
    operator_note: str | None = None


@dataclass(frozen=True, slots=True)
class PayoutReviewed:
    """The result: the payout after the action, and whether the action changed it."""

    payout: PayoutRecord
    effect: Effect


def review_payout(ctx: ServiceContext, command: ReviewPayout, *, actor: Actor) -> PayoutReviewed:
    with ctx.unit_of_work() as uow:
        payout = uow.payouts.require(command.payout_id, for_update=True)
        decision = decide(payout.status, command.action)
        if decision.effect is Effect.REFUSED:
            raise InvalidState(
                refusal_message(payout.status, command.action),
                details={"payout_id": payout.id, "status": str(payout.status), "action": str(command.action)},
            )
        if decision.effect is Effect.UNCHANGED:
            return PayoutReviewed(payout, decision.effect)
        if command.action is PayoutAction.APPROVE:
            check_maker_checker(ctx.settings, payout, actor)
        reviewed = _apply(uow, payout, decision, command, actor)
        uow.commit()
    return PayoutReviewed(reviewed, decision.effect)


def check_maker_checker(settings: Settings, payout: PayoutRecord, approver: Actor) -> None:
    """With ``payout_require_distinct_approver``, whoever opened a payout may not approve it."""
    if settings.payout_require_distinct_approver and approver.name == payout.created_by:
        raise Forbidden(
            f"Maker-checker: operator {approver.name!r} created this payout and cannot also approve it; "
            "another named operator must approve it.",
            details={"payout_id": payout.id, "created_by": payout.created_by, "approver": approver.name},
        )


def _apply(
    uow: UnitOfWork, payout: PayoutRecord, decision: Decision, command: ReviewPayout, actor: Actor
) -> PayoutRecord:
    reviewed = replace(payout, status=decision.status_after, updated_at=uow.now)
    if decision.releases_reservation:
        uow.ledger.change_reserved(payout.account_id, -payout.amount_units)
    if decision.posts_payment:
        reviewed = replace(
            reviewed,
            transaction_id=_post_payment(uow, payout),
            provider_payout_id="po_mock_" + secrets.token_hex(12),
        )
    if command.action is PayoutAction.APPROVE:
        reviewed = replace(reviewed, approved_by=actor.name, operator_note=command.operator_note)
    elif command.operator_note is not None:
        reviewed = replace(reviewed, operator_note=command.operator_note)
    if not uow.payouts.update(reviewed, status_before=decision.status_before):
        # The row is locked, so this cannot happen; if it does, write nothing.
        raise LedgerInvariantViolation(f"payout {payout.id} changed status under its lock")
    uow.audit.add(
        AuditEntry(
            actor=actor.name,
            action=f"payout.{command.action}",
            resource_type=PAYOUT_REFERENCE_TYPE,
            resource_id=payout.id,
            before_status=str(decision.status_before),
            after_status=str(decision.status_after),
            amount_units=payout.amount_units,
            note=command.operator_note,
            request_id=actor.request_id,
            details={
                "developer_id": payout.developer_id,
                "wallet_id": payout.account_id,
                "transaction_id": reviewed.transaction_id,
                "provider_payout_id": reviewed.provider_payout_id,
            },
        )
    )
    return reviewed


def _post_payment(uow: UnitOfWork, payout: PayoutRecord) -> str:
    """Developer wallet → payout clearing, the payout's amount; the transaction's id."""
    clearing = uow.ledger.ensure(OwnerScope.SYSTEM, SystemAccount.PAYOUT_CLEARING.value)
    reason = Reason.MOCK_PAYOUT_PAID.value
    return uow.ledger.post(
        Transaction.transfer(
            reason,
            debit=payout.account_id,
            credit=clearing,
            amount_units=payout.amount_units,
            reference_type=PAYOUT_REFERENCE_TYPE,
            reference_id=payout.id,
        )
    )
