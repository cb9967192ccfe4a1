"""Reading payouts for operators: the newest ones, one with its history, and the gauges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..domain.payouts import PayoutStatus
from .context import ServiceContext
from .repositories import PAYOUT_REFERENCE_TYPE, AuditRecord, PayoutRecord
from .unit_of_work import UnitOfWork


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


@dataclass(frozen=True, slots=True)
class PayoutGauges:
    by_status: dict[PayoutStatus, int]  # every status, 0 when none
    oldest_open_created_at: datetime | None


def payout_gauges(ctx: ServiceContext) -> PayoutGauges:
    """What the metrics scrape shows of payouts: two small aggregate reads."""
    with ctx.reader() as uow:
        return payout_gauges_in(uow)


def payout_gauges_in(uow: UnitOfWork) -> PayoutGauges:
    counts = uow.payouts.count_by_status()
    oldest = uow.payouts.oldest_open_created_at()
    return PayoutGauges({status: counts.get(status, 0) for status in PayoutStatus}, oldest)
