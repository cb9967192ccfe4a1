"""Which database errors make record_usage decide a batch again, on SQLite and PostgreSQL.

A lost race — a request id another transaction stored first, a deadlock, a serialisation
failure — is :class:`ConcurrentWrite` (raised by the usage repository or the unit of work)
and the batch is decided again in a fresh unit of work; any other database error is a bug
or an outage and surfaces at once, with nothing kept.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from modelfaucet.adapters.db.repositories import usage as usage_repository
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.record_usage import UsageStatus, record_usage
from modelfaucet.services.seed import DEMO_OPENING_UNITS, SeedResult
from modelfaucet.services.unit_of_work import ConcurrentWrite

from .usage_support import balance, posting_count, usage_count
from .usage_support import event as usage_event


class DriverError(Exception):
    """A driver exception carrying a PostgreSQL SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def fail_first_inserts(monkeypatch: pytest.MonkeyPatch, error: Exception, times: int = 1) -> list[int]:
    """Make the first ``times`` usage inserts raise ``error``; return the list of attempts."""
    real_insert_many = usage_repository.insert_many
    attempts: list[int] = []

    def insert_many(*args: Any, **kwargs: Any) -> None:
        attempts.append(1)
        if len(attempts) <= times:
            raise error
        real_insert_many(*args, **kwargs)

    monkeypatch.setattr(usage_repository, "insert_many", insert_many)
    return attempts


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError("INSERT usage_events", {}, DriverError("23505")),  # unique_violation
        DBAPIError("INSERT usage_events", {}, DriverError("40P01")),  # deadlock_detected
        DBAPIError("INSERT usage_events", {}, DriverError("40001")),  # serialization_failure
    ],
    ids=["unique request id", "deadlock", "serialisation"],
)
def test_a_lost_race_is_decided_again_in_a_fresh_unit_of_work(
    ctx: ServiceContext, seeded: SeedResult, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    attempts = fail_first_inserts(monkeypatch, error, times=2)
    outcome = record_usage(ctx, usage_event("raced"))
    assert outcome.status is UsageStatus.RECORDED, outcome.error
    assert len(attempts) == 3
    assert (usage_count(ctx), posting_count(ctx)) == (1, 4)  # the failed attempts kept nothing


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError("INSERT usage_events", {}, DriverError("23514")),  # check_violation: a bug
        DBAPIError("INSERT usage_events", {}, DriverError("57014")),  # query_canceled
    ],
    ids=["check violation", "cancelled"],
)
def test_any_other_database_error_surfaces_at_once_and_keeps_nothing(
    ctx: ServiceContext, seeded: SeedResult, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    attempts = fail_first_inserts(monkeypatch, error)
    with pytest.raises(type(error)):
        record_usage(ctx, usage_event("broken"))
    assert len(attempts) == 1
    assert (usage_count(ctx), posting_count(ctx)) == (0, 0)
    assert balance(ctx, seeded.end_user_wallet_id) == DEMO_OPENING_UNITS


def test_a_unit_of_work_left_by_a_deadlock_raises_concurrent_write(ctx: ServiceContext, seeded: SeedResult) -> None:
    deadlock = DBAPIError("UPDATE accounts", {}, DriverError("40P01"))
    with pytest.raises(ConcurrentWrite) as raised, ctx.unit_of_work():
        raise deadlock
    assert raised.value.__cause__ is deadlock
