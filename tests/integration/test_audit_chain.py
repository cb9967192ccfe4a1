"""The tamper-evident audit log: rows written unchained with their action, chained after
commit by one chainer at a time, verification, the triggers, concurrent writers, the CLI."""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from modelfaucet.adapters.db import audit, migrate
from modelfaucet.adapters.db.audit import GENESIS_HASH
from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.engine import make_engine
from modelfaucet.adapters.db.tables import audit_log
from modelfaucet.cli.main import app as cli_app
from modelfaucet.domain.audit import AuditEntry
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.verify_audit import verify_audit_chain
from tests.audit_support import bypass_audit_guards
from tests.integration.old_schema import database_at

T0 = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def entry(i: int) -> AuditEntry:
    return AuditEntry(
        actor="alice",
        action="payout.approve",
        resource_type="payout",
        resource_id=f"po-{i}",
        before_status="pending",
        after_status="processing",
        amount_units=123_456_789 + i,
        note=f"reviewed {i} — ünïcode",
        request_id=f"req_{i}",
        details={"b": [1, 2, {"z": None}], "a": "x", "n": i},
    )


def write_rows(ctx: ServiceContext, count: int, *, start: int = 0) -> None:
    """``count`` audited writes, each its own unit of work (inserted, committed, chained)."""
    for i in range(start, start + count):
        at = T0 + timedelta(seconds=i)
        with dataclasses.replace(ctx, clock=lambda at=at: at).unit_of_work() as uow:
            uow.audit.add(entry(i))
            uow.commit()


def write_unchained(ctx: ServiceContext, count: int, *, start: int = 0) -> None:
    """Rows as a crash between an action's commit and its chaining leaves them."""
    for i in range(start, start + count):
        with ctx.db.transaction() as conn:
            audit.record(conn, now=T0 + timedelta(seconds=i), **dataclasses.asdict(entry(i)))


def rows(ctx: ServiceContext) -> list[Any]:
    with ctx.db.read() as conn:
        return list(conn.execute(select(audit_log).order_by(audit_log.c.id)).all())


def ids(ctx: ServiceContext) -> list[int]:
    return [int(row.id) for row in rows(ctx)]


def unchained(ctx: ServiceContext) -> int:
    with ctx.db.read() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(audit_log).where(audit_log.c.chain_seq.is_(None))
            ).scalar_one()
        )


def assert_one_gapless_chain(ctx: ServiceContext, count: int) -> None:
    chain = sorted(rows(ctx), key=lambda row: row.chain_seq)
    assert [row.chain_seq for row in chain] == list(range(1, count + 1))
    assert chain[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(chain):
        assert after.prev_hash == before.row_hash
    report = verify_audit_chain(ctx, chain_first=False)
    assert (report.ok, report.checked_count, report.tail_hash) == (True, count, chain[-1].row_hash), report


def test_each_write_is_chained_when_its_unit_of_work_commits(ctx: ServiceContext) -> None:
    write_rows(ctx, 5)
    stored = rows(ctx)
    assert [row.chain_seq for row in stored] == [1, 2, 3, 4, 5]
    assert len({row.row_hash for row in stored}) == 5
    assert_one_gapless_chain(ctx, 5)


def test_an_empty_log_verifies(ctx: ServiceContext) -> None:
    report = verify_audit_chain(ctx)
    assert (report.ok, report.checked_count, report.tail_hash) == (True, 0, GENESIS_HASH)


def test_a_non_utc_timestamp_still_verifies(ctx: ServiceContext) -> None:
    with ctx.db.transaction() as conn:
        audit.record(conn, now=T0.astimezone(timezone(timedelta(hours=-5))), actor="bob", action="x", resource_type="y")
    report = verify_audit_chain(ctx)
    assert (report.ok, report.checked_count, report.chained_now) == (True, 1, 1)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("note", "nothing to see here"),
        ("amount_units", 1),
        ("actor", "mallory"),
        ("after_status", "paid"),
        ("details", {"a": "y"}),
        ("created_at", T0 + timedelta(days=1)),
    ],
)
def test_editing_a_row_in_the_database_is_caught_at_that_row(ctx: ServiceContext, column: str, value: object) -> None:
    write_rows(ctx, 5)
    target = ids(ctx)[2]
    with bypass_audit_guards(ctx.db) as conn:
        conn.execute(update(audit_log).where(audit_log.c.id == target).values({column: value}))
    report = verify_audit_chain(ctx)
    assert not report.ok
    assert report.first_broken_id == target
    assert report.checked_count == 2
    assert "edited" in (report.problem or "")


def test_deleting_a_row_is_caught_at_the_next_row(ctx: ServiceContext) -> None:
    write_rows(ctx, 5)
    row_ids = ids(ctx)
    with bypass_audit_guards(ctx.db) as conn:
        conn.execute(delete(audit_log).where(audit_log.c.id == row_ids[1]))
    report = verify_audit_chain(ctx)
    assert (report.ok, report.first_broken_id, report.checked_count) == (False, row_ids[2], 1)


def test_deleting_a_row_and_renumbering_the_positions_is_caught(ctx: ServiceContext) -> None:
    write_rows(ctx, 4)
    row_ids = ids(ctx)
    with bypass_audit_guards(ctx.db) as conn:
        conn.execute(delete(audit_log).where(audit_log.c.id == row_ids[1]))
        for position, row_id in enumerate((row_ids[0], row_ids[2], row_ids[3]), start=1):
            conn.execute(update(audit_log).where(audit_log.c.id == row_id).values(chain_seq=position))
    report = verify_audit_chain(ctx)
    assert (report.ok, report.first_broken_id) == (False, row_ids[2])
    assert "prev_hash" in (report.problem or "")


def test_reordering_two_rows_is_caught(ctx: ServiceContext) -> None:
    write_rows(ctx, 4)
    row_ids = ids(ctx)
    with bypass_audit_guards(ctx.db) as conn:
        conn.execute(update(audit_log).where(audit_log.c.id == row_ids[1]).values(chain_seq=-2))
        conn.execute(update(audit_log).where(audit_log.c.id == row_ids[2]).values(chain_seq=2))
        conn.execute(update(audit_log).where(audit_log.c.id == row_ids[1]).values(chain_seq=3))
    report = verify_audit_chain(ctx)
    assert (report.ok, report.first_broken_id, report.checked_count) == (False, row_ids[2], 1)


def test_rewriting_a_row_with_a_fresh_hash_is_caught_at_the_next_row(ctx: ServiceContext) -> None:
    write_rows(ctx, 4)
    row_ids = ids(ctx)
    with bypass_audit_guards(ctx.db) as conn:
        row = conn.execute(select(audit_log).where(audit_log.c.id == row_ids[1])).one()
        fields = dict(row._mapping)
        fields["note"] = "forged"
        forged = audit.row_hash(fields, row.prev_hash)
        conn.execute(update(audit_log).where(audit_log.c.id == row_ids[1]).values(note="forged", row_hash=forged))
    report = verify_audit_chain(ctx)
    assert (report.ok, report.first_broken_id) == (False, row_ids[2])


# -- the triggers: append-only, chained once --------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"note": "forged"},
        {"row_hash": "f" * 64},
        {"prev_hash": "f" * 64},
        {"chain_seq": 99},
        {"chain_seq": None, "prev_hash": None, "row_hash": None},
    ],
)
def test_a_chained_row_cannot_change(ctx: ServiceContext, change: dict[str, object]) -> None:
    write_rows(ctx, 2)
    target = ids(ctx)[0]
    with pytest.raises(DBAPIError, match="audit_log"), ctx.db.transaction() as conn:
        conn.execute(update(audit_log).where(audit_log.c.id == target).values(change))
    assert verify_audit_chain(ctx).ok


def test_no_audit_row_can_be_deleted(ctx: ServiceContext) -> None:
    write_rows(ctx, 1)
    write_unchained(ctx, 1, start=1)
    for target in ids(ctx):
        with pytest.raises(DBAPIError, match="append-only"), ctx.db.transaction() as conn:
            conn.execute(delete(audit_log).where(audit_log.c.id == target))
    assert len(ids(ctx)) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"note": "edited before chaining"},
        {"amount_units": 1, "chain_seq": 1, "prev_hash": GENESIS_HASH, "row_hash": "a" * 64},
        {"details": {"a": "y"}, "chain_seq": 1, "prev_hash": GENESIS_HASH, "row_hash": "a" * 64},
        {"chain_seq": 1, "prev_hash": GENESIS_HASH},  # a position without its hash
    ],
)
def test_an_unchained_row_may_only_receive_its_chain_fields(ctx: ServiceContext, change: dict[str, object]) -> None:
    write_unchained(ctx, 1)
    target = ids(ctx)[0]
    with pytest.raises(DBAPIError, match="audit_log"), ctx.db.transaction() as conn:
        conn.execute(update(audit_log).where(audit_log.c.id == target).values(change))
    report = verify_audit_chain(ctx)
    assert (report.ok, report.checked_count, report.chained_now) == (True, 1, 1)


# -- concurrency -----------------------------------------------------------------------


def test_concurrent_audited_writes_end_as_one_gapless_chain(ctx: ServiceContext, db_url: str) -> None:
    writers, each = 8, 12

    def writer(n: int) -> None:
        db = Database.from_url(db_url)
        try:
            write_rows(ServiceContext(db=db, settings=ctx.settings), each, start=n * 100)
        finally:
            db.dispose()

    with ThreadPoolExecutor(max_workers=writers) as pool:
        list(pool.map(writer, range(writers)))
    # Chained after each commit by whichever writer held the chain lock: nothing is left
    # for verification to do.
    assert unchained(ctx) == 0
    assert_one_gapless_chain(ctx, writers * each)


WRITER_PROCESS = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from modelfaucet.adapters.db.database import Database
    from modelfaucet.config import Settings
    from modelfaucet.domain.audit import AuditEntry
    from modelfaucet.services.context import ServiceContext

    url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    db = Database.from_url(url)
    ctx = ServiceContext(db=db, settings=Settings(database_url=url))
    for i in range(count):
        with ctx.unit_of_work() as uow:
            uow.audit.add(AuditEntry(actor=name, action="test.write", resource_type="t", resource_id=str(i)))
            uow.commit()
    db.dispose()
    """
)


def test_two_processes_writing_at_once_end_as_one_gapless_chain(ctx: ServiceContext, db_url: str) -> None:
    count = 40
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER_PROCESS, db_url, name, str(count)]) for name in ("p1", "p2")
    ]
    assert [process.wait(timeout=120) for process in processes] == [0, 0]
    assert unchained(ctx) == 0
    assert_one_gapless_chain(ctx, 2 * count)
    assert sorted(row.actor for row in rows(ctx)) == ["p1"] * count + ["p2"] * count


# -- crashes and failures between commit and chaining -----------------------------------


def test_rows_left_unchained_by_a_crash_are_a_finding_until_chained(ctx: ServiceContext) -> None:
    write_rows(ctx, 2)
    write_unchained(ctx, 3, start=2)
    read_only = verify_audit_chain(ctx, chain_first=False)
    assert (read_only.ok, read_only.checked_count, read_only.unchained_count) == (False, 2, 3)
    assert read_only.first_broken_id == ids(ctx)[2]
    assert "not chained" in (read_only.problem or "")
    # Young unchained rows (a write that committed a moment ago) are not a finding yet.
    assert verify_audit_chain(ctx, chain_first=False, unchained_grace=timedelta(days=10_000)).ok
    report = verify_audit_chain(ctx)
    assert (report.ok, report.checked_count, report.chained_now, report.unchained_count) == (True, 5, 3, 0)
    assert_one_gapless_chain(ctx, 5)


def test_the_next_audited_write_chains_what_a_crash_left(ctx: ServiceContext) -> None:
    write_unchained(ctx, 3)
    write_rows(ctx, 1, start=3)
    assert unchained(ctx) == 0
    assert [row.chain_seq for row in rows(ctx)] == [1, 2, 3, 4]  # in id order
    assert_one_gapless_chain(ctx, 4)


def test_a_failing_chainer_does_not_undo_the_committed_write(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> int:
        raise RuntimeError("chainer died")

    monkeypatch.setattr(audit, "chain_committed", broken)
    write_rows(ctx, 2)
    assert (len(ids(ctx)), unchained(ctx)) == (2, 2)
    monkeypatch.undo()
    report = verify_audit_chain(ctx)
    assert (report.ok, report.checked_count, report.chained_now) == (True, 2, 2)


def wait_until_chained(ctx: ServiceContext, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while unchained(ctx) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_process_chainer_chains_committed_rows_off_the_writers_path(ctx: ServiceContext) -> None:
    """With a BackgroundChainer (the API process), a unit of work that wrote audit rows only
    tells it: the rows are still unchained when the commit returns, and the chainer's thread
    chains them, several writes in one run, into one gapless chain that verifies."""
    chainer = audit.BackgroundChainer(ctx.db.engine, gather_seconds=0.3)
    ctx.db.audit_chainer = chainer
    try:
        write_rows(ctx, 3)
        assert unchained(ctx) == 3  # the writers did not chain (the chainer is gathering)
        wait_until_chained(ctx)
        assert unchained(ctx) == 0
        assert chainer.runs == 1  # the three writes in one run
        write_rows(ctx, 2, start=3)
        wait_until_chained(ctx)
    finally:
        ctx.db.audit_chainer = None
        started = time.monotonic()
        chainer.close()  # the thread waits for work: it stops at once
    assert time.monotonic() - started < 2
    assert_one_gapless_chain(ctx, 5)


def test_closing_the_process_chainer_chains_what_is_left(ctx: ServiceContext) -> None:
    """Shutdown does not wait out the gathering, and leaves nothing unchained."""
    chainer = audit.BackgroundChainer(ctx.db.engine, gather_seconds=60)
    ctx.db.audit_chainer = chainer
    try:
        write_rows(ctx, 4)
        assert unchained(ctx) == 4
    finally:
        ctx.db.audit_chainer = None
        started = time.monotonic()
        chainer.close()
    assert time.monotonic() - started < 2
    assert unchained(ctx) == 0
    assert_one_gapless_chain(ctx, 4)


def test_a_failing_process_chainer_leaves_rows_for_the_next_chainer(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []

    def broken(*_args: object, **_kwargs: object) -> int:
        calls.append(True)
        raise RuntimeError("chainer died")

    chainer = audit.BackgroundChainer(ctx.db.engine, gather_seconds=0.01)
    ctx.db.audit_chainer = chainer
    monkeypatch.setattr(audit, "chain_committed", broken)
    try:
        write_rows(ctx, 2)
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls and unchained(ctx) == 2  # committed, not undone, not chained
    finally:
        ctx.db.audit_chainer = None
        monkeypatch.undo()
        chainer.close()  # chains them now
    assert_one_gapless_chain(ctx, 2)


def test_a_failed_transaction_leaves_no_audit_row_and_the_chain_intact(ctx: ServiceContext) -> None:
    write_rows(ctx, 2)
    with pytest.raises(RuntimeError), ctx.unit_of_work() as uow:
        uow.audit.add(entry(99))
        raise RuntimeError("the operation failed after its audit entry")
    write_rows(ctx, 2, start=10)
    assert len(ids(ctx)) == 4
    assert_one_gapless_chain(ctx, 4)


# -- the CLI ---------------------------------------------------------------------------


def test_the_cli_verifies_the_chain_and_exits_1_naming_the_broken_row(ctx: ServiceContext, db_url: str) -> None:
    write_rows(ctx, 3)
    runner = CliRunner()
    env = {"DATABASE_URL": db_url, "MODELFAUCET_ENV": "development"}
    ok = runner.invoke(cli_app, ["audit", "verify"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "intact: 3 rows" in ok.output
    target = ids(ctx)[1]
    with bypass_audit_guards(ctx.db) as conn:
        conn.execute(update(audit_log).where(audit_log.c.id == target).values(amount_units=0))
    broken = runner.invoke(cli_app, ["audit", "verify"], env=env)
    assert broken.exit_code == 1
    assert f"BROKEN at row {target}" in broken.output


def test_the_cli_chains_unchained_rows_unless_told_only_to_read(ctx: ServiceContext, db_url: str) -> None:
    write_unchained(ctx, 2)
    runner = CliRunner()
    env = {"DATABASE_URL": db_url, "MODELFAUCET_ENV": "development"}
    read_only = runner.invoke(cli_app, ["audit", "verify", "--no-chain"], env=env)
    assert read_only.exit_code == 1
    assert "not chained" in read_only.output
    assert unchained(ctx) == 2
    chained = runner.invoke(cli_app, ["audit", "verify"], env=env)
    assert chained.exit_code == 0, chained.output
    assert "intact: 2 rows" in chained.output
    assert unchained(ctx) == 0


# -- the migration ---------------------------------------------------------------------


@pytest.fixture
def pre_0008_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database migrated only up to 0006 (before the chain moved after commit)."""
    with database_at(db_url, tmp_path, "0006") as url:
        yield url


def test_a_chain_written_before_0008_verifies_after_it_and_grows(pre_0008_url: str, settings: Any) -> None:
    engine = make_engine(pre_0008_url)
    prev = GENESIS_HASH
    with engine.begin() as conn:  # the old writer: chained in id order, in the writing transaction
        for i in range(4):
            fields = audit.entry_row(now=T0 + timedelta(seconds=i), **dataclasses.asdict(entry(i)))
            digest = audit.row_hash(fields, prev)
            # Only the columns named here: chain_seq does not exist yet.
            conn.execute(sa.insert(audit_log).values(**fields, prev_hash=prev, row_hash=digest))
            prev = digest
    migrate.upgrade(engine)
    engine.dispose()
    db = Database.from_url(pre_0008_url)
    try:
        ctx = ServiceContext(db=db, settings=settings.model_copy(update={"database_url": pre_0008_url}))
        report = verify_audit_chain(ctx, chain_first=False)
        assert (report.ok, report.checked_count, report.tail_hash) == (True, 4, prev)
        assert [row.chain_seq for row in rows(ctx)] == [1, 2, 3, 4]
        write_rows(ctx, 1, start=4)
        assert_one_gapless_chain(ctx, 5)
        assert rows(ctx)[-1].prev_hash == prev
    finally:
        db.dispose()
