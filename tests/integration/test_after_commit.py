"""The unit of work tells only what committed: after_commit callbacks and the money moved
by reason, on SQLite, PostgreSQL and the in-memory fake alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import pytest

from modelfaucet.domain.ledger import OwnerScope, Posting, Transaction
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.signals import Moved
from tests.fakes.memory import MemoryStore


@dataclass
class Recorder:
    moved: list[dict[str, Moved]] = field(default_factory=list)

    def usage_batch(self, outcomes: Sequence[tuple[str, str]], *, seconds: float) -> None: ...

    def money_moved(self, by_reason: Mapping[str, Moved]) -> None:
        self.moved.append(dict(by_reason))

    def stripe_webhook(self, event_type: str, outcome: str) -> None: ...

    def reconciled(self, mismatches: int, *, at: datetime) -> None: ...

    def holds_expired(self, count: int) -> None: ...


class Boom(Exception):
    pass


@pytest.fixture
def watched(ctx: ServiceContext) -> tuple[ServiceContext, Recorder]:
    recorder = Recorder()
    return replace(ctx, signals=recorder), recorder


@pytest.fixture
def watched_memory() -> tuple[ServiceContext, Recorder]:
    recorder = Recorder()
    return ServiceContext(db=None, settings=None, units=MemoryStore(signals=recorder)), recorder  # type: ignore[arg-type]


def _transfer(ctx: ServiceContext, amount_units: int, *, fail_after_posting: bool, calls: list[str]) -> None:
    with ctx.unit_of_work() as uow:
        source = uow.ledger.ensure(OwnerScope.SYSTEM, "seed_equity")
        target = uow.ledger.ensure(OwnerScope.PLATFORM, "platform")
        uow.ledger.post(
            Transaction.of(
                "wallet_adjustment",
                [
                    Posting(target, amount_units, "wallet_adjustment"),
                    Posting(source, -amount_units, "seed_opening_balance"),
                ],
            )
        )
        uow.after_commit(lambda: calls.append("committed"))
        if fail_after_posting:
            raise Boom
        uow.commit()


def test_a_rolled_back_unit_of_work_runs_no_callback_and_reports_no_money(
    watched: tuple[ServiceContext, Recorder],
) -> None:
    assert_rollback_tells_nothing(*watched)


def test_a_rolled_back_memory_unit_of_work_runs_no_callback_and_reports_no_money(
    watched_memory: tuple[ServiceContext, Recorder],
) -> None:
    assert_rollback_tells_nothing(*watched_memory)


def assert_rollback_tells_nothing(ctx: ServiceContext, recorder: Recorder) -> None:
    calls: list[str] = []
    with pytest.raises(Boom):
        _transfer(ctx, 700, fail_after_posting=True, calls=calls)
    assert (calls, recorder.moved) == ([], [])


def test_a_committed_unit_of_work_runs_its_callbacks_once_and_reports_the_postings_by_reason(
    watched: tuple[ServiceContext, Recorder],
) -> None:
    assert_commit_tells_once(*watched)


def test_a_committed_memory_unit_of_work_runs_its_callbacks_once_and_reports_the_postings_by_reason(
    watched_memory: tuple[ServiceContext, Recorder],
) -> None:
    assert_commit_tells_once(*watched_memory)


def assert_commit_tells_once(ctx: ServiceContext, recorder: Recorder) -> None:
    calls: list[str] = []
    _transfer(ctx, 700, fail_after_posting=False, calls=calls)
    _transfer(ctx, 50, fail_after_posting=False, calls=calls)
    assert calls == ["committed", "committed"]
    assert recorder.moved == [
        {"wallet_adjustment": Moved(1, 700), "seed_opening_balance": Moved(1, 0)},
        {"wallet_adjustment": Moved(1, 50), "seed_opening_balance": Moved(1, 0)},
    ]
