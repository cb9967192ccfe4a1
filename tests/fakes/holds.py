"""In-memory hold repository: the same protocol and rules as ``SqlHolds``."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from modelfaucet.domain.holds import HoldStatus
from modelfaucet.services.repositories import HoldRecord
from modelfaucet.services.unit_of_work import ConcurrentWrite


@dataclass
class HoldState:
    holds: dict[str, HoldRecord] = field(default_factory=dict)  # by id, in insertion order


class MemoryHolds:
    """Implements :class:`modelfaucet.services.repositories.HoldRepository` in memory."""

    def __init__(self, state: HoldState, now: datetime) -> None:
        self.state = state
        self.now = now

    def _ordered(self) -> list[HoldRecord]:
        return sorted(self.state.holds.values(), key=lambda hold: (hold.created_at, hold.id))

    def by_request_ids(self, request_ids: Collection[str]) -> dict[str, HoldRecord]:
        wanted = set(request_ids)
        return {hold.request_id: hold for hold in self.state.holds.values() if hold.request_id in wanted}

    def by_ids(self, hold_ids: Collection[str]) -> dict[str, HoldRecord]:
        return {key: self.state.holds[key] for key in hold_ids if key in self.state.holds}

    def add_many(self, holds: Sequence[HoldRecord]) -> None:
        taken = {hold.request_id for hold in self.state.holds.values()}
        if any(hold.request_id in taken for hold in holds) or len({h.request_id for h in holds}) != len(holds):
            raise ConcurrentWrite()
        for hold in holds:
            self.state.holds[hold.id] = hold

    def _end(self, hold_id: str, status: HoldStatus, capture_request_id: str | None = None) -> bool:
        hold = self.state.holds.get(hold_id)
        if hold is None or hold.status is not HoldStatus.HELD:
            return False
        self.state.holds[hold_id] = replace(
            hold, status=status, ended_at=self.now, capture_request_id=capture_request_id
        )
        return True

    def capture_many(self, captures: Mapping[str, str]) -> int:
        return sum(1 for hold_id in sorted(captures) if self._end(hold_id, HoldStatus.CAPTURED, captures[hold_id]))

    def end_many(self, hold_ids: Collection[str], status: HoldStatus) -> int:
        return sum(1 for hold_id in sorted(set(hold_ids)) if self._end(hold_id, status))

    def due(self, *, limit: int) -> list[HoldRecord]:
        due = [h for h in self._ordered() if h.status is HoldStatus.HELD and h.expires_at <= self.now]
        return sorted(due, key=lambda hold: (hold.expires_at, hold.id))[:limit]

    def due_on(self, account_ids: Collection[str]) -> list[HoldRecord]:
        wanted = set(account_ids)
        return [h for h in self.due(limit=len(self.state.holds)) if h.account_id in wanted]

    def open_on(self, account_id: str) -> list[HoldRecord]:
        return [h for h in self._ordered() if h.account_id == account_id and h.status is HoldStatus.HELD]

    def count_held(self) -> int:
        return sum(1 for hold in self.state.holds.values() if hold.status is HoldStatus.HELD)
