"""The hot paths' statements on the bare driver (issue 16), PostgreSQL only: SQLite runs
them through SQLAlchemy as before.

- A usage batch of any size writes its rows by COPY: one event costs one COPY per table,
  not an INSERT.
- A statement run by ``driver_rows`` / ``driver_rowcount`` / ``insert_many`` is seen by the
  engine's statement listeners, and a driver error comes out as SQLAlchemy's exception class
  with the driver's error (and its SQLSTATE) as ``.orig``: a unique violation is an
  ``IntegrityError``, a deadlock is a lost race that the unit of work turns into
  ``ConcurrentWrite``, and the connection is usable again after the rollback.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from modelfaucet.adapters.db.bulk import driver_rowcount, driver_rows, insert_many
from modelfaucet.adapters.db.errors import lost_a_race, sqlstate, unique_violation
from modelfaucet.adapters.db.tables import ledger_transactions
from modelfaucet.domain.identity import new_id
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.record_usage import record_usage
from modelfaucet.services.seed import SeedResult
from modelfaucet.services.unit_of_work import ConcurrentWrite

from .usage_support import event, usage_count

DEADLOCK = "DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '40P01'; END $$"


@pytest.fixture(autouse=True)
def _postgres_only(ctx: ServiceContext) -> None:
    if not ctx.db.is_postgres:
        pytest.skip("the bare-driver statements are PostgreSQL's; SQLite goes through SQLAlchemy")


def seen_statements(ctx: ServiceContext) -> tuple[list[str], Any]:
    seen: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(" ".join(sql.split()))

    sa_event.listen(ctx.db.engine, "before_cursor_execute", statement)
    return seen, statement


def test_a_one_event_batch_writes_its_rows_by_copy(ctx: ServiceContext, seeded: SeedResult) -> None:
    record_usage(ctx, event("copy-warm"))
    seen, listener = seen_statements(ctx)
    try:
        outcome = record_usage(ctx, event("copy-1"))
    finally:
        sa_event.remove(ctx.db.engine, "before_cursor_execute", listener)
    assert outcome.status == "recorded"
    copies = sorted(sql.split('"')[1] for sql in seen if sql.startswith("COPY "))
    assert copies == ["ledger_postings", "ledger_transactions", "usage_events"], seen
    assert not [sql for sql in seen if sql.upper().startswith("INSERT INTO")], seen
    # The debit and the credits ran on the driver too, and the listeners saw them.
    assert [sql for sql in seen if sql.startswith("WITH m AS") and "UPDATE accounts" in sql], seen
    assert usage_count(ctx) == 2
    assert reconcile_ledger(ctx).ok


def test_driver_rows_answer_tuples_and_rowcounts(ctx: ServiceContext) -> None:
    with ctx.db.transaction() as conn:
        rows = driver_rows(conn, "SELECT %(a)s::bigint, %(b)s::text", {"a": 2**62, "b": "x"})
        assert rows == [(2**62, "x")]
        assert driver_rows(conn, "CREATE TEMPORARY TABLE t_driver (n int) ON COMMIT DROP", {}) == []
        assert driver_rowcount(conn, "INSERT INTO t_driver SELECT generate_series(1, %(n)s)", {"n": 3}) == 3


def test_a_unique_violation_on_the_driver_is_sqlalchemys_integrity_error(ctx: ServiceContext) -> None:
    taken = new_id()
    with ctx.db.transaction() as conn:
        insert_many(conn, ledger_transactions, ("id", "reason", "created_at"), [(taken, "test", ctx.clock())])
    statement = "INSERT INTO ledger_transactions (id, reason, created_at) VALUES (%(id)s, 'test', now())"
    with pytest.raises(IntegrityError) as raised, ctx.db.transaction() as conn:
        driver_rows(conn, statement, {"id": taken})
    assert unique_violation(raised.value) and sqlstate(raised.value) == "23505"
    with pytest.raises(IntegrityError) as copied, ctx.db.transaction() as conn:  # the same by COPY
        insert_many(conn, ledger_transactions, ("id", "reason", "created_at"), [(taken, "test", ctx.clock())])
    assert unique_violation(copied.value)
    with ctx.db.read() as conn:  # nothing of the failed transactions stayed; the pool still works
        count = conn.execute(select(func.count()).select_from(ledger_transactions)).scalar_one()
    assert count == 1


def test_other_driver_errors_keep_their_class_and_sqlstate(ctx: ServiceContext) -> None:
    with pytest.raises(DataError) as raised, ctx.db.transaction() as conn:
        driver_rows(conn, "SELECT 1 / %(zero)s::int", {"zero": 0})
    assert sqlstate(raised.value) == "22012"
    with pytest.raises(OperationalError) as deadlock, ctx.db.transaction() as conn:
        driver_rows(conn, DEADLOCK, {})
    assert lost_a_race(deadlock.value)


def test_a_deadlock_on_the_driver_is_a_concurrent_write_of_the_unit_of_work(ctx: ServiceContext) -> None:
    with pytest.raises(ConcurrentWrite), ctx.unit_of_work() as uow:
        driver_rows(uow.connection, DEADLOCK, {})
    with ctx.unit_of_work() as uow:  # the pooled connection was rolled back and is usable
        assert driver_rows(uow.connection, "SELECT 1", {}) == [(1,)]
