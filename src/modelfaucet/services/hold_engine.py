"""The hold engine: hold placements and voids go through group commit like usage events.

Concurrent ``POST /v1/usage/holds`` and ``…/void`` requests are queued on one
:class:`~.group_commit.GroupCommit`; each batch (placements and voids mixed, in arrival
order) is decided and written by :func:`~.holds.apply_holds` in ONE unit of work that locks
each end-user wallet of the batch once, in id order, and moves its reserved amount once
by the batch's net change. There is no hot row (a hold touches only its own wallet and its
own hold row, never a shared account), and no lock is held while anyone waits on the
network: the queue groups work in memory before the transaction begins.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from functools import partial

from .context import ServiceContext
from .group_commit import GroupCommit
from .holds import HoldCommand, HoldOutcome, HoldResult, PlaceHold, VoidHold, apply_holds


class HoldEngine:
    def __init__(self, ctx: ServiceContext, *, max_batch: int = 500, max_wait_seconds: float = 0.002) -> None:
        self._commit: GroupCommit[HoldCommand, HoldResult] = GroupCommit(
            partial(apply_holds, ctx), name="hold-posting", max_batch=max_batch, max_wait_seconds=max_wait_seconds
        )

    @property
    def batches(self) -> int:
        return self._commit.batches

    @property
    def commands(self) -> int:
        return self._commit.items

    def place_many(self, commands: Sequence[PlaceHold]) -> list[Future[HoldResult]]:
        """One future per placement; each resolves to a :class:`~.holds.HoldOutcome`."""
        return self._commit.submit_many(commands)

    def void(self, hold_id: str) -> Future[HoldResult]:
        """Resolves to a :class:`~.holds.VoidOutcome` (see :func:`~.holds.void_result`)."""
        return self._commit.submit(VoidHold(hold_id))

    async def place(self, commands: Sequence[PlaceHold]) -> list[HoldResult]:
        """:meth:`place_many` for coroutines (the HTTP handlers): the outcomes in order."""
        return await self._commit.run_many(commands)

    async def void_hold(self, hold_id: str) -> HoldResult:
        """:meth:`void` for coroutines."""
        return await self._commit.run(VoidHold(hold_id))

    def close(self, timeout: float = 10.0) -> None:
        self._commit.close(timeout)


def placement(outcome: HoldResult) -> HoldOutcome:
    """A placement's outcome as its type (a placement is always answered by one)."""
    if not isinstance(outcome, HoldOutcome):  # pragma: no cover - see apply_holds
        raise TypeError("a placement was answered as a void")
    return outcome
