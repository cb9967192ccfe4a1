"""The tamper-evident audit log: hash chain, verification, concurrent writers, the CLI."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from modelfaucet.adapters.db import audit
from modelfaucet.adapters.db.audit import GENESIS_HASH
from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import audit_log
from modelfaucet.cli.main import app as cli_app
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.verify_audit import verify_audit_chain

T0 = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def write_rows(ctx: ServiceContext, count: int, *, start: int = 0) -> None:
    for i in range(start, start + count):
        with ctx.db.transaction() as conn:
            audit.record(
                conn,
                now=T0 + timedelta(seconds=i),
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


def ids(ctx: ServiceContext) -> list[int]:
    with ctx.db.read() as conn:
        return [int(r.id) for r in conn.execute(select(audit_log.c.id).order_by(audit_log.c.id))]


def test_every_row_is_chained_to_the_previous_one(ctx: ServiceContext) -> None:
    write_rows(ctx, 5)
    with ctx.db.read() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.id)).all()
    assert rows[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.row_hash
    assert len({row.row_hash for row in rows}) == 5
    report = verify_audit_chain(ctx)
    assert (report.ok, report.checked_count, report.tail_hash) == (True, 5, rows[-1].row_hash)


def test_an_empty_log_verifies(ctx: ServiceContext) -> None:
    report = verify_audit_chain(ctx)
    assert (report.ok, report.checked_count, report.tail_hash) == (True, 0, GENESIS_HASH)


def test_a_non_utc_timestamp_still_verifies(ctx: ServiceContext) -> None:
    with ctx.db.transaction() as conn:
        audit.record(
            conn,
            now=T0.astimezone(timezone(timedelta(hours=-5))),
            actor="bob",
            action="x",
            resource_type="y",
        )
    assert verify_audit_chain(ctx).ok


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
    with ctx.db.transaction() as conn:
        conn.execute(update(audit_log).where(audit_log.c.id == target).values({column: value}))
    report = verify_audit_chain(ctx)
    assert not report.ok
    assert report.first_broken_id == target
    assert report.checked_count == 2
    assert "edited" in (report.problem or "")


def test_deleting_a_row_is_caught_at_the_next_row(ctx: ServiceContext) -> None:
    write_rows(ctx, 5)
    row_ids = ids(ctx)
    with ctx.db.transaction() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.id == row_ids[1]))
    report = verify_audit_chain(ctx)
    assert (report.ok, report.first_broken_id) == (False, row_ids[2])


def test_rewriting_a_row_with_a_fresh_hash_is_caught_at_the_next_row(ctx: ServiceContext) -> None:
    write_rows(ctx, 4)
    row_ids = ids(ctx)
    with ctx.db.transaction() as conn:
        row = conn.execute(select(audit_log).where(audit_log.c.id == row_ids[1])).one()
        fields = dict(row._mapping)
        fields["note"] = "forged"
        forged = audit.row_hash(fields, row.prev_hash)
        conn.execute(update(audit_log).where(audit_log.c.id == row_ids[1]).values(note="forged", row_hash=forged))
    report = verify_audit_chain(ctx)
    assert (report.ok, report.first_broken_id) == (False, row_ids[2])


def test_concurrent_writers_keep_one_unbroken_chain(ctx: ServiceContext, db_url: str) -> None:
    def writer(n: int) -> None:
        db = Database.from_url(db_url)
        try:
            write_rows(ServiceContext(db=db, settings=ctx.settings), 10, start=n * 100)
        finally:
            db.dispose()

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(writer, range(6)))
    report = verify_audit_chain(ctx)
    assert (report.ok, report.checked_count) == (True, 60)


def test_a_failed_transaction_leaves_no_audit_row_and_the_chain_intact(ctx: ServiceContext) -> None:
    write_rows(ctx, 2)
    with pytest.raises(RuntimeError), ctx.db.transaction() as conn:
        audit.record(conn, now=T0, actor="a", action="b", resource_type="c")
        raise RuntimeError("the operation failed after its audit row")
    write_rows(ctx, 2, start=10)
    report = verify_audit_chain(ctx)
    assert (report.ok, report.checked_count) == (True, 4)


def test_the_cli_verifies_the_chain_and_exits_1_naming_the_broken_row(ctx: ServiceContext, db_url: str) -> None:
    write_rows(ctx, 3)
    runner = CliRunner()
    env = {"DATABASE_URL": db_url, "MODELFAUCET_ENV": "development"}
    ok = runner.invoke(cli_app, ["audit", "verify"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "intact: 3 rows" in ok.output
    target = ids(ctx)[1]
    with ctx.db.transaction() as conn:
        conn.execute(update(audit_log).where(audit_log.c.id == target).values(amount_units=0))
    broken = runner.invoke(cli_app, ["audit", "verify"], env=env)
    assert broken.exit_code == 1
    assert f"BROKEN at row {target}" in broken.output
