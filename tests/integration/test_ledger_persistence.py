"""The ledger on a real database (SQLite and PostgreSQL): atomic, append-only, never overdrawn."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from modelfaucet.adapters.db import audit, ledger
from modelfaucet.adapters.db.tables import accounts, audit_log, ledger_postings, ledger_transactions, metadata
from modelfaucet.domain.ledger import OwnerScope, Posting, Reason, SystemAccount, Transaction
from modelfaucet.domain.money import parse_usd
from modelfaucet.domain.outcomes import InsufficientBalance
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.reconciliation_provenance import PROVENANCE_CHECKS
from modelfaucet.services.seed import SeedResult

# These tests post raw transactions through the ledger adapter, with no source row (no
# adjustment, top-up or usage event), so reconciliation's provenance checks rightly flag
# them; what they test is that the books balance.
_PROVENANCE = {check.__name__ for check in PROVENANCE_CHECKS}


def books_balance(ctx: ServiceContext) -> bool:
    report = reconcile_ledger(ctx)
    return report.mismatch_count == 0 and all(c.ok for c in report.checks if c.name not in _PROVENANCE)


def _count(ctx: ServiceContext, table: object) -> int:
    with ctx.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _balance(ctx: ServiceContext, account_id: str) -> int:
    with ctx.db.read() as conn:
        return int(ledger.get_account(conn, account_id).balance_units)


def _refund_contra(ctx: ServiceContext) -> str:
    with ctx.db.read() as conn:
        found = ledger.account_id_for(conn, OwnerScope.SYSTEM, SystemAccount.REFUND_CONTRA.value)
    assert found is not None
    return found


def _debit(account_id: str, contra: str, units: int) -> Transaction:
    reason = Reason.WALLET_ADJUSTMENT.value
    return Transaction.of(reason, [Posting.debit(account_id, units, reason), Posting.credit(contra, units, reason)])


def test_migrations_create_exactly_the_tables_the_code_uses(ctx: ServiceContext) -> None:
    with ctx.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_tampering_with_a_stored_balance_is_reported_as_a_mismatch_with_its_delta(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    with ctx.db.transaction() as conn:
        conn.execute(
            update(accounts)
            .where(accounts.c.id == seeded.end_user_wallet_id)
            .values(balance_units=accounts.c.balance_units + parse_usd("1.25"))
        )
    report = reconcile_ledger(ctx)
    body = report.as_dict()
    assert report.ok is False
    assert body["summary"]["mismatch_count"] == 1
    [item] = [i for i in body["items"] if i["status"] == "mismatch"]
    assert item["wallet_id"] == seeded.end_user_wallet_id
    assert item["wallet_balance_usd"] == "11.25000000"
    assert item["ledger_balance_usd"] == "10.00000000"
    assert item["delta_usd"] == "1.25000000"
    assert body["checks"]["balances_sum_to_zero"]["ok"] is False


def test_tampering_with_a_system_account_is_reported_by_its_check(ctx: ServiceContext, seeded: SeedResult) -> None:
    contra = _refund_contra(ctx)
    with ctx.db.transaction() as conn:
        conn.execute(update(accounts).where(accounts.c.id == contra).values(balance_units=7))
    body = reconcile_ledger(ctx).as_dict()
    assert body["summary"]["mismatch_count"] == 0
    check = body["checks"]["system_accounts_match_ledger"]
    assert check["ok"] is False
    assert [o["wallet_id"] for o in check["offending"]] == [contra]


def test_an_unbalanced_transaction_smuggled_into_the_table_is_named(ctx: ServiceContext, seeded: SeedResult) -> None:
    with ctx.db.transaction() as conn:
        conn.execute(
            ledger_transactions.insert().values(
                id="00000000-0000-0000-0000-00000000dead", reason="forged", created_at=ctx.clock()
            )
        )
        conn.execute(
            ledger_postings.insert().values(
                transaction_id="00000000-0000-0000-0000-00000000dead",
                account_id=seeded.platform_wallet_id,
                amount_units=5,
                reason="forged",
                created_at=ctx.clock(),
            )
        )
    check = reconcile_ledger(ctx).as_dict()["checks"]["transactions_balanced"]
    assert check["ok"] is False
    assert check["offending"] == [
        {"transaction_id": "00000000-0000-0000-0000-00000000dead", "sum_usd": "0.00000005", "posting_count": 1}
    ]


def test_a_failed_debit_leaves_no_rows_at_all(ctx: ServiceContext, seeded: SeedResult) -> None:
    contra = _refund_contra(ctx)
    before = {t.name: _count(ctx, t) for t in (ledger_transactions, ledger_postings, audit_log)}
    with pytest.raises(InsufficientBalance), ctx.db.transaction() as conn:
        audit.record(conn, now=ctx.clock(), actor="test", action="claims.success", resource_type="wallet")
        ledger.post(conn, _debit(seeded.end_user_wallet_id, contra, parse_usd("10.00000001")), now=ctx.clock())
    assert {t.name: _count(ctx, t) for t in (ledger_transactions, ledger_postings, audit_log)} == before
    assert _balance(ctx, seeded.end_user_wallet_id) == parse_usd("10")
    assert books_balance(ctx)


def test_a_debit_of_exactly_the_balance_succeeds_and_reaches_zero(ctx: ServiceContext, seeded: SeedResult) -> None:
    contra = _refund_contra(ctx)
    with ctx.db.transaction() as conn:
        ledger.post(conn, _debit(seeded.end_user_wallet_id, contra, parse_usd("10")), now=ctx.clock())
    assert _balance(ctx, seeded.end_user_wallet_id) == 0
    assert books_balance(ctx)


def test_reserved_funds_cannot_be_debited(ctx: ServiceContext, seeded: SeedResult) -> None:
    contra = _refund_contra(ctx)
    with ctx.db.transaction() as conn:
        ledger.change_reserved(conn, seeded.end_user_wallet_id, parse_usd("6"), now=ctx.clock())
    with pytest.raises(InsufficientBalance), ctx.db.transaction() as conn:
        ledger.post(conn, _debit(seeded.end_user_wallet_id, contra, parse_usd("4.00000001")), now=ctx.clock())
    with ctx.db.transaction() as conn:
        ledger.post(conn, _debit(seeded.end_user_wallet_id, contra, parse_usd("4")), now=ctx.clock())
    assert _balance(ctx, seeded.end_user_wallet_id) == parse_usd("6")


@pytest.mark.parametrize("statement", ["UPDATE ledger_postings SET amount_units = 1", "DELETE FROM ledger_postings"])
def test_ledger_rows_are_append_only_even_for_raw_sql(ctx: ServiceContext, seeded: SeedResult, statement: str) -> None:
    with pytest.raises(DBAPIError, match="append-only"), ctx.db.transaction() as conn:
        conn.execute(text(statement))
    with pytest.raises(DBAPIError, match="append-only"), ctx.db.transaction() as conn:
        conn.execute(
            text(statement.replace("ledger_postings", "ledger_transactions").replace("amount_units", "reason"))
        )
    assert books_balance(ctx)


def test_the_database_refuses_a_negative_end_user_balance_even_without_the_engine(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    with pytest.raises(IntegrityError), ctx.db.transaction() as conn:
        conn.execute(update(accounts).where(accounts.c.id == seeded.end_user_wallet_id).values(balance_units=-1))


def test_concurrent_debits_on_one_wallet_never_overdraw_it(ctx: ServiceContext, seeded: SeedResult) -> None:
    """40 threads each debit 0.30 from a 10.00 wallet: exactly 33 succeed."""
    contra = _refund_contra(ctx)
    amount = parse_usd("0.30")

    def attempt(_: int) -> bool:
        try:
            with ctx.db.transaction() as conn:
                ledger.post(conn, _debit(seeded.end_user_wallet_id, contra, amount), now=ctx.clock())
        except InsufficientBalance:
            return False
        return True

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(attempt, range(40)))
    assert outcomes.count(True) == 33
    assert _balance(ctx, seeded.end_user_wallet_id) == parse_usd("10") - 33 * amount
    assert books_balance(ctx)


def test_concurrent_credits_to_one_hot_account_all_land(ctx: ServiceContext, seeded: SeedResult) -> None:
    """Opposite-order account sets must not deadlock: postings are applied in sorted id order."""
    contra = _refund_contra(ctx)
    reason = Reason.WALLET_ADJUSTMENT.value

    def credit(index: int) -> None:
        target = seeded.platform_wallet_id if index % 2 else seeded.developer_wallet_id
        postings = [Posting.credit(target, 7, reason), Posting.debit(contra, 7, reason)]
        if index % 3 == 0:
            postings.reverse()
        with ctx.db.transaction() as conn:
            ledger.post(conn, Transaction.of(reason, postings), now=ctx.clock())

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(credit, range(60)))
    assert _balance(ctx, seeded.platform_wallet_id) + _balance(ctx, seeded.developer_wallet_id) == 60 * 7
    assert books_balance(ctx)
