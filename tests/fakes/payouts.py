"""In-memory payouts for the service tests of the payout rules (see ``tests/fakes/memory.py``).

:class:`PayoutBook` is the payouts part of the committed state (the developers who can be
paid, and their payouts); :class:`MemoryPayouts` implements
:class:`~modelfaucet.services.repositories.PayoutRepository` over it with the SQL rules: at
most one open payout per developer (the partial unique index), candidates in wallet-id
order, a status-conditional update.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from modelfaucet.domain.ledger import OwnerScope
from modelfaucet.domain.outcomes import LedgerInvariantViolation, NotFound
from modelfaucet.domain.payouts import OPEN_STATUSES, PayoutStatus
from modelfaucet.services.repositories import PayoutCandidate, PayoutRecord

if TYPE_CHECKING:
    from tests.fakes.memory import MemoryState


@dataclass
class PayoutBook:
    developers: dict[str, str] = field(default_factory=dict)  # developer id -> status ("active", …)
    payouts: dict[str, PayoutRecord] = field(default_factory=dict)


class MemoryPayouts:
    def __init__(self, state: MemoryState, now: datetime) -> None:
        self.state = state
        self.book = state.payouts
        self.now = now

    def candidates(self) -> list[PayoutCandidate]:
        active = {developer for developer, status in self.book.developers.items() if status == "active"}
        return [
            PayoutCandidate(developer_id=account.owner_id, account_id=account.account_id)
            for account in sorted(self.state.accounts.values(), key=lambda a: a.account_id)
            if account.owner_scope is OwnerScope.DEVELOPER
            and account.owner_id in active
            and account.available_units > 0
        ]

    def has_open(self, developer_id: str) -> bool:
        return any(p.developer_id == developer_id and p.status in OPEN_STATUSES for p in self.book.payouts.values())

    def credited_since(self, account_id: str, *, since: datetime) -> int:
        # postings: (id, transaction id, account id, amount, reason, created_at)
        return sum(p[3] for p in self.state.postings if p[2] == account_id and p[3] > 0 and p[5] > since)

    def add(self, payout: PayoutRecord) -> bool:
        if payout.id in self.book.payouts:
            raise LedgerInvariantViolation("duplicate payout id")
        if payout.status in OPEN_STATUSES and self.has_open(payout.developer_id):
            return False
        self.book.payouts[payout.id] = payout
        return True

    def get(self, payout_id: str, *, for_update: bool = False) -> PayoutRecord | None:
        return self.book.payouts.get(payout_id)

    def require(self, payout_id: str, *, for_update: bool = False) -> PayoutRecord:
        found = self.get(payout_id)
        if found is None:
            raise NotFound("Payout was not found.", details={"payout_id": payout_id})
        return found

    def update(self, payout: PayoutRecord, *, status_before: PayoutStatus) -> bool:
        stored = self.book.payouts.get(payout.id)
        if stored is None or stored.status is not status_before:
            return False
        self.book.payouts[payout.id] = payout
        return True

    def latest(self, *, status: PayoutStatus | None, limit: int) -> list[PayoutRecord]:
        found = [p for p in self.book.payouts.values() if status is None or p.status is status]
        found.sort(key=lambda p: p.id)
        found.sort(key=lambda p: p.created_at, reverse=True)
        return found[:limit]

    def count_by_status(self) -> dict[PayoutStatus, int]:
        return dict(Counter(p.status for p in self.book.payouts.values()))

    def oldest_open_created_at(self) -> datetime | None:
        return min((p.created_at for p in self.book.payouts.values() if p.status in OPEN_STATUSES), default=None)
