"""Reconciliation trusts no single table (both engines).

Each test forges what someone with write access to the database could: a balanced
transaction with a plausible reason and no source row, a source row edited after the
fact, both legs of a real adjustment doubled after dropping the append-only triggers.
Balances can be made to agree with such forgeries; the provenance checks still name them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, insert, select, text, update

from modelfaucet.adapters.db.tables import accounts, adjustments, audit_log, ledger_postings, ledger_transactions
from modelfaucet.domain.identity import new_id
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.reconciliation_checks import CheckResult
from modelfaucet.services.reconciliation_provenance import PROVENANCE_CHECKS
from modelfaucet.services.seed import SeedResult
from tests.audit_support import bypass_audit_guards


def provenance(ctx: ServiceContext) -> dict[str, CheckResult]:
    with ctx.reader(snapshot=True) as uow:
        return {result.name: result for result in (check(uow) for check in PROVENANCE_CHECKS)}


def failing(ctx: ServiceContext) -> set[str]:
    return {name for name, result in provenance(ctx).items() if not result.ok}


@pytest.fixture
def busy(client: TestClient, admin_headers: dict[str, str], seeded: SeedResult) -> SeedResult:
    """A ledger with every kind of operator-originated transaction: adjustments and a paid payout."""
    for n, (wallet, direction) in enumerate(
        [
            (seeded.end_user_wallet_id, "credit"),
            (seeded.end_user_wallet_id, "debit"),
            (seeded.developer_wallet_id, "credit"),
        ]
    ):
        response = client.post(
            f"/v1/admin/wallets/{wallet}/adjustments",
            json={"direction": direction, "amount_usd": "2.00", "reason": f"probe {n}"},
            headers=admin_headers,
        )
        assert response.status_code == 201, response.text
    [payout] = client.post("/v1/admin/payouts/run-mock", json={"threshold_usd": "1.00"}, headers=admin_headers).json()[
        "items"
    ]
    assert client.post(f"/v1/admin/payouts/{payout['id']}/approve", json={}, headers=admin_headers).status_code == 200
    assert client.post(f"/v1/admin/payouts/{payout['id']}/mark-paid", headers=admin_headers).status_code == 200
    return seeded


def forge_transaction(conn: Connection, reason: str, legs: list[tuple[str, int]], **reference: str) -> str:
    """A balanced transaction written straight into the tables, balances moved to match."""
    transaction_id = new_id()
    now = conn.execute(select(accounts.c.created_at).limit(1)).scalar_one()
    conn.execute(insert(ledger_transactions).values(id=transaction_id, reason=reason, created_at=now, **reference))
    for account_id, amount in legs:
        conn.execute(
            insert(ledger_postings).values(
                transaction_id=transaction_id, account_id=account_id, amount_units=amount, reason=reason, created_at=now
            )
        )
        conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(balance_units=accounts.c.balance_units + amount)
        )
    return transaction_id


def system_account(conn: Connection, owner_id: str) -> str:
    return conn.execute(select(accounts.c.id).where(accounts.c.owner_id == owner_id)).scalar_one()


def test_a_busy_honest_ledger_passes_every_provenance_check(ctx: ServiceContext, busy: SeedResult) -> None:
    results = provenance(ctx)
    assert set(results) == {
        "transactions_have_known_reasons",
        "usage_transactions_have_their_event",
        "adjustments_tie_to_postings_and_audit",
        "paid_payouts_tie_to_postings_and_audit",
        "seed_openings_tie_to_audit",
        "append_only_guards_installed",
        "stripe_reversals_tie_to_postings",
    }
    assert all(result.ok for result in results.values()), {n: r.offending for n, r in results.items() if not r.ok}


@pytest.mark.parametrize(
    ("reason", "contra", "reference", "caught_by"),
    [
        ("wallet_adjustment", "adjustment_contra", {}, "adjustments_tie_to_postings_and_audit"),
        ("wallet_refund", "refund_contra", {"reference_type": "adjustment"}, "adjustments_tie_to_postings_and_audit"),
        (
            "seed_opening_balance",
            "seed_equity",
            {"reference_type": "seed", "reference_id": "x"},
            "seed_openings_tie_to_audit",
        ),
        ("mock_payout_paid", "payout_clearing", {}, "paid_payouts_tie_to_postings_and_audit"),
        ("usage_retail_price", "platform", {"reference_type": "usage_event"}, "usage_transactions_have_their_event"),
        ("free_money", "adjustment_contra", {}, "transactions_have_known_reasons"),
    ],
)
def test_a_forged_balanced_transaction_without_its_source_row_is_named(  # noqa: PLR0917
    ctx: ServiceContext, busy: SeedResult, reason: str, contra: str, reference: dict[str, str], caught_by: str
) -> None:
    with ctx.db.transaction() as conn:
        forged = forge_transaction(
            conn,
            reason,
            [(busy.end_user_wallet_id, 7_00000000), (system_account(conn, contra), -7_00000000)],
            **reference,
        )
    results = provenance(ctx)
    assert not results[caught_by].ok
    assert forged in str(results[caught_by].offending)


def test_an_adjustment_row_whose_amount_was_edited_is_named(ctx: ServiceContext, busy: SeedResult) -> None:
    with ctx.db.transaction() as conn:
        target = conn.execute(select(adjustments.c.id).limit(1)).scalar_one()
        conn.execute(
            update(adjustments).where(adjustments.c.id == target).values(amount_units=adjustments.c.amount_units * 10)
        )
    result = provenance(ctx)["adjustments_tie_to_postings_and_audit"]
    assert not result.ok
    assert target in str(result.offending)


def test_an_adjustment_missing_its_audit_row_is_named(ctx: ServiceContext, busy: SeedResult, engine_name: str) -> None:
    with bypass_audit_guards(ctx.db) as conn:
        target = conn.execute(select(adjustments.c.id).limit(1)).scalar_one()
        # The audit log's triggers refuse this; a database owner past them is caught by
        # `audit verify` (the hash chain), and by the missing tie here.
        conn.execute(update(audit_log).where(audit_log.c.resource_id == target).values(resource_id="elsewhere"))
    result = provenance(ctx)["adjustments_tie_to_postings_and_audit"]
    assert not result.ok
    assert "audit" in str(result.offending)


@pytest.fixture
def unguarded(ctx: ServiceContext, engine_name: str) -> Iterator[None]:
    """Drop the append-only triggers for one test (and put them back on PostgreSQL, whose
    database outlives the test)."""
    with ctx.db.transaction() as conn:
        if engine_name == "postgresql":
            for table in ("ledger_transactions", "ledger_postings"):
                conn.execute(text(f"DROP TRIGGER {table}_append_only ON {table}"))
        else:
            for table in ("ledger_transactions", "ledger_postings"):
                for action in ("update", "delete"):
                    conn.execute(text(f"DROP TRIGGER {table}_no_{action}"))
    try:
        yield
    finally:
        if engine_name == "postgresql":
            with ctx.db.transaction() as conn:
                for table in ("ledger_transactions", "ledger_postings"):
                    conn.execute(
                        text(
                            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                            "FOR EACH ROW EXECUTE FUNCTION modelfaucet_refuse_ledger_change()"
                        )
                    )


def test_doubling_both_legs_of_a_real_adjustment_without_the_triggers_is_named(
    ctx: ServiceContext, busy: SeedResult, unguarded: None
) -> None:
    with ctx.db.transaction() as conn:
        target, transaction_id = conn.execute(select(adjustments.c.id, adjustments.c.transaction_id).limit(1)).one()
        for account_id, amount in conn.execute(
            select(ledger_postings.c.account_id, ledger_postings.c.amount_units).where(
                ledger_postings.c.transaction_id == transaction_id
            )
        ).all():
            conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(balance_units=accounts.c.balance_units + amount)
            )
        conn.execute(
            update(ledger_postings)
            .where(ledger_postings.c.transaction_id == transaction_id)
            .values(amount_units=ledger_postings.c.amount_units * 2)
        )
    results = provenance(ctx)
    assert not results["adjustments_tie_to_postings_and_audit"].ok
    assert target in str(results["adjustments_tie_to_postings_and_audit"].offending)
    assert not results["append_only_guards_installed"].ok
