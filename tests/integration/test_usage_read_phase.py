"""A usage batch reads and rates before its write transaction (issue 16), on SQLite and
PostgreSQL.

- ``batch_inputs`` (one statement on PostgreSQL) answers exactly what the separate loaders
  answer: stored events with their receipts, the request ids holds were placed with, apps,
  features and prices, unknown keys left out; past one chunk of request ids as well.
- On the fast path the write transaction reads no catalogue and no stored event: those
  reads ran before it, in a read-only unit of work, so the write holds its row locks only
  for the writes.
- What the read phase saw is never trusted by the write: a request id stored after the
  read (by another process) still makes the batch a duplicate, not a second posting.
- On PostgreSQL the read phase runs outside any transaction (no BEGIN and ROLLBACK round
  trips); the write is one transaction.
- The platform, provider-cost and developer accounts move last, after the usage rows,
  just before the COMMIT: their row locks are held for the shortest time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event as sa_event

from modelfaucet.domain.money import parse_usd
from modelfaucet.services import record_usage as record_usage_module
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.holds import PlaceHold, place_holds
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.record_usage import record_usage, record_usage_batch
from modelfaucet.services.seed import SeedResult

from .usage_support import balance, event, fund_end_user, usage_count

RETAIL = 136_500


def test_batch_inputs_answer_what_the_separate_loaders_answer(ctx: ServiceContext, seeded: SeedResult) -> None:
    fund_end_user(ctx, seeded, "reader", parse_usd("5"))
    stored = record_usage_batch(ctx, [event(f"stored-{n}", external_user_id="reader") for n in range(3)])
    assert {o.status for o in stored} == {"recorded"}
    [placed] = place_holds(ctx, [PlaceHold("held-1", "app_pub_demo", "reader", "customer_reply", 1_000, 60)])
    assert placed.hold is not None and placed.hold.status == "held"
    request_ids = {"stored-0", "stored-2", "held-1", "never-seen"}
    features = {("app_pub_demo", "customer_reply"), ("app_pub_demo", "no-such-feature"), ("no-such-app", "x")}
    prices = {("mock", "mock-small"), ("mock", "no-such-model")}
    with ctx.reader() as uow:
        together = uow.usage.batch_inputs(request_ids, features, prices)
        apps = uow.usage.billable_apps({"app_pub_demo", "no-such-app"})
        apart = (
            uow.usage.find(request_ids),
            set(uow.holds.by_request_ids(request_ids)),
            uow.usage.feature_pricing({(seeded.app_id, "customer_reply"), (seeded.app_id, "no-such-feature")}),
            uow.usage.model_prices(prices),
        )
    assert together.stored == apart[0] and set(together.stored) == {"stored-0", "stored-2"}
    assert together.stored["stored-2"].receipt == stored[2].receipt  # the original receipt, exactly
    assert together.hold_request_ids == apart[1] == {"held-1"}
    assert together.apps == apps and set(apps) == {"app_pub_demo"}
    assert together.features == apart[2] and set(together.features) == {(seeded.app_id, "customer_reply")}
    assert together.prices == apart[3] and set(together.prices) == {("mock", "mock-small")}


def test_batch_inputs_past_one_chunk_of_request_ids(ctx: ServiceContext, seeded: SeedResult) -> None:
    outcomes = record_usage_batch(ctx, [event(f"chunk-{n}") for n in range(3)])
    assert {o.status for o in outcomes} == {"recorded"}
    many = {f"chunk-{n}" for n in range(1_200)}
    with ctx.reader() as uow:
        inputs = uow.usage.batch_inputs(many, {("app_pub_demo", "customer_reply")}, {("mock", "mock-small")})
    assert set(inputs.stored) == {"chunk-0", "chunk-1", "chunk-2"}
    assert set(inputs.apps) == {"app_pub_demo"} and len(inputs.features) == 1 and len(inputs.prices) == 1


@contextmanager
def transactions(ctx: ServiceContext) -> Iterator[list[list[str]]]:
    """The statements the engine runs, grouped by database transaction."""
    seen: list[list[str]] = [[]]

    def begin(_conn: Any) -> None:
        seen.append([])

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen[-1].append(" ".join(sql.split()).lower())

    sa_event.listen(ctx.db.engine, "begin", begin)
    sa_event.listen(ctx.db.engine, "before_cursor_execute", statement)
    try:
        yield seen
    finally:
        sa_event.remove(ctx.db.engine, "before_cursor_execute", statement)
        sa_event.remove(ctx.db.engine, "begin", begin)


def test_the_fast_write_transaction_reads_no_catalogue(ctx: ServiceContext, seeded: SeedResult) -> None:
    fund_end_user(ctx, seeded, "phases", parse_usd("5"))
    record_usage(ctx, event("phases-0", external_user_id="phases"))  # end user and ids known
    with transactions(ctx) as seen:
        outcomes = record_usage_batch(ctx, [event(f"phases-{n}", external_user_id="phases") for n in range(1, 4)])
    assert {o.status for o in outcomes} == {"recorded"}
    units = [statements for statements in seen if statements]
    writes = [s for s in units if any("update accounts" in sql for sql in s)]
    assert len(writes) == 1, units
    [write] = writes
    read_tables = ("from usage_events", "from apps", "join apps", "app_features", "model_prices", "from holds")
    assert not [sql for sql in write if sql.startswith("select") and any(t in sql for t in read_tables)], write
    reads = units[: units.index(write)]
    assert any("model_prices" in sql for s in reads for sql in s), units  # read before, apart
    assert all(not any(w in sql for w in ("update ", "insert ", "delete ")) for s in reads for sql in s)


def test_a_request_id_stored_after_the_read_is_a_duplicate(
    ctx: ServiceContext, seeded: SeedResult, monkeypatch: Any
) -> None:
    """Another process stores the same request id between this batch's read and its write:
    the usage insert hits the unique constraint, nothing of the write is kept, and the batch
    is decided again — a duplicate of the stored event, money moved once."""
    wallet = fund_end_user(ctx, seeded, "racer", 5 * RETAIL)
    prepare = record_usage_module._prepare
    raced: list[str] = []

    def prepare_then_race(*args: Any, **kwargs: Any) -> Any:
        plan = prepare(*args, **kwargs)
        if not raced:
            raced.append("done")
            # The other process: the same event, committed in its own units of work.
            [other] = record_usage_batch(ctx, [event("raced-1", external_user_id="racer")])
            assert other.status == "recorded"
        return plan

    monkeypatch.setattr(record_usage_module, "_prepare", prepare_then_race)
    [outcome] = record_usage_batch(ctx, [event("raced-1", external_user_id="racer")])
    assert raced == ["done"]
    assert outcome.status == "duplicate"
    assert usage_count(ctx) == 1
    assert balance(ctx, wallet) == 4 * RETAIL
    assert reconcile_ledger(ctx).ok


def test_the_read_phase_runs_outside_a_transaction_on_postgresql(ctx: ServiceContext, seeded: SeedResult) -> None:
    if not ctx.db.is_postgres:
        pytest.skip("SQLite's deferred read transaction costs no round trip")
    fund_end_user(ctx, seeded, "outside", parse_usd("5"))
    record_usage(ctx, event("outside-0", external_user_id="outside"))
    seen: list[tuple[str, bool]] = []

    def statement(_conn: Any, cursor: Any, sql: str, *_args: Any) -> None:
        seen.append((" ".join(sql.split()).lower(), cursor.connection.autocommit))

    sa_event.listen(ctx.db.engine, "before_cursor_execute", statement)
    try:
        outcomes = record_usage_batch(ctx, [event(f"outside-{n}", external_user_id="outside") for n in (1, 2)])
    finally:
        sa_event.remove(ctx.db.engine, "before_cursor_execute", statement)
    assert {o.status for o in outcomes} == {"recorded"}
    reads = [autocommit for sql, autocommit in seen if "model_prices" in sql]
    writes = [autocommit for sql, autocommit in seen if "update accounts" in sql or sql.startswith("copy")]
    assert reads == [True], seen
    assert writes and not any(writes), seen
    # A connection back in the pool is transactional again for the next unit of work.
    with ctx.unit_of_work() as uow:
        assert uow.connection.connection.driver_connection.autocommit is False


def test_the_system_accounts_move_last_just_before_the_commit(ctx: ServiceContext, seeded: SeedResult) -> None:
    fund_end_user(ctx, seeded, "last", parse_usd("5"))
    record_usage(ctx, event("last-0", external_user_id="last"))
    seen: list[list[tuple[str, str]]] = [[]]

    def begin(_conn: Any) -> None:
        seen.append([])

    def statement(_conn: Any, _cursor: Any, sql: str, params: Any, *_args: Any) -> None:
        seen[-1].append((" ".join(sql.split()).lower(), str(params)))

    sa_event.listen(ctx.db.engine, "begin", begin)
    sa_event.listen(ctx.db.engine, "before_cursor_execute", statement)
    try:
        outcomes = record_usage_batch(ctx, [event(f"last-{n}", external_user_id="last") for n in (1, 2, 3)])
    finally:
        sa_event.remove(ctx.db.engine, "before_cursor_execute", statement)
        sa_event.remove(ctx.db.engine, "begin", begin)
    assert {o.status for o in outcomes} == {"recorded"}
    [write] = [unit for unit in seen if any("usage_events" in sql and "select" not in sql[:6] for sql, _ in unit)]
    usage_at = max(i for i, (sql, _) in enumerate(write) if "usage_events" in sql)
    after = write[usage_at + 1 :]
    assert after and all("update accounts" in sql for sql, _ in after), write
    system = {seeded.platform_wallet_id, seeded.provider_cost_wallet_id, seeded.developer_wallet_id}
    moved_last = " ".join(params for _, params in after)
    assert all(account_id in moved_last for account_id in system), after
