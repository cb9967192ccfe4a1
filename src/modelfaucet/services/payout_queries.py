"""Reading payouts for operators: the newest ones, and one with its history."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.payouts import PayoutStatus
from .context import ServiceContext
from .repositories import PAYOUT_REFERENCE_TYPE, AuditRecord, PayoutRecord


@dataclass(frozen=True, slots=True)
class PayoutWithHistory:
    payout: PayoutRecord
    history: tuple[AuditRecord, ...]  # every audit entry about the payout, oldest first


def list_payouts(ctx: ServiceContext, *, status: PayoutStatus | None = None, limit: int = 100) -> list[PayoutRecord]:
    """Newest first, optionally of one status."""
    with ctx.reader() as uow:
        return uow.payouts.latest(status=status, limit=limit)


def get_payout(ctx: ServiceContext, payout_id: str) -> PayoutWithHistory:
    """The payout (or NotFound) with its history."""
    with ctx.reader() as uow:
        payout = uow.payouts.require(payout_id)
        history = uow.reports.audit_history(PAYOUT_REFERENCE_TYPE, payout_id)
    return PayoutWithHistory(payout, tuple(history))
