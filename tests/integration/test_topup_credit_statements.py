"""What one Stripe webhook credit costs in statements (issue 16, B7), on SQLite and PostgreSQL.

B7 is bound by the API process's CPU, and most of a credit's CPU is spent per statement.
A credit reads the Stripe clearing account's id from the per-database memory of committed
system accounts (no SELECT on ``accounts`` once a unit of work that read it committed), and
the audit chainer reads the chain tail in the same statement as the rows it chains. The
memory never holds the id of an account a unit of work created and then rolled back.
"""

from __future__ import annotations

from sqlalchemy import select

from modelfaucet.adapters.db.tables import accounts
from modelfaucet.domain.ledger import OwnerScope, SystemAccount
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import SeedResult
from modelfaucet.services.stripe_webhook import WebhookOutcome, handle_stripe_webhook
from modelfaucet.services.verify_audit import verify_audit_chain
from tests.sql_support import statements
from tests.stripe_support import event_bytes, pending_topup, session_user

FIVE_USD = 500_000_000
# Per credit, the chaining of its audit row included. PostgreSQL: event insert, top-up
# lock (with whether the wallet has overdue holds), ledger transaction with its postings
# (one statement), status move, answer, audit insert, both balances; then try-lock,
# unchained rows with the tail, chain update, the re-check after release. SQLite:
# transaction and postings apart, one UPDATE per balance, no advisory lock, no re-check.
STATEMENTS_PER_CREDIT = {"postgresql": 11, "sqlite": 11}


def deliver(ctx: ServiceContext, payload: bytes) -> WebhookOutcome:
    outcome = handle_stripe_webhook(ctx, payload=payload, signature_header=None)
    assert isinstance(outcome, WebhookOutcome)
    return outcome


def is_statement_of_work(sql: str) -> bool:
    # SQLite's BEGIN IMMEDIATE is issued through the cursor too; it is a transaction, not work.
    return not sql.upper().startswith(("BEGIN", "COMMIT", "ROLLBACK"))


def test_a_credit_costs_a_known_number_of_statements_and_none_looks_up_the_clearing_account(
    ctx: ServiceContext, seeded: SeedResult, engine_name: str
) -> None:
    user = session_user(ctx, seeded)
    warm, measured = pending_topup(ctx, user, FIVE_USD), pending_topup(ctx, user, FIVE_USD)
    deliver(ctx, event_bytes(session_id=warm.checkout_session_id, event_id="evt_warm"))

    with statements(ctx) as seen:
        result = deliver(ctx, event_bytes(session_id=measured.checkout_session_id, event_id="evt_measured"))

    assert result.outcome == "credited"
    work = [sql for sql in seen if is_statement_of_work(sql)]
    assert not [sql for sql in work if "FROM accounts WHERE accounts.owner_scope" in sql], work
    # Whether the wallet has overdue holds comes with the locked top-up; the chain tail
    # with the unchained rows: neither is a statement of its own.
    assert not [sql for sql in work if sql.startswith("SELECT holds.")], work
    assert not [sql for sql in work if sql.startswith("SELECT audit_log.chain_seq, audit_log.row_hash")], work
    assert len(work) == STATEMENTS_PER_CREDIT[engine_name], work
    assert reconcile_ledger(ctx).ok
    assert verify_audit_chain(ctx).ok


def stored_id(ctx: ServiceContext, owner_id: str) -> str | None:
    with ctx.db.read() as conn:
        system = accounts.c.owner_scope == str(OwnerScope.SYSTEM)
        found = conn.execute(select(accounts.c.id).where(system, accounts.c.owner_id == owner_id)).scalar_one_or_none()
    return None if found is None else str(found)


def test_the_system_account_memory_never_keeps_an_id_its_unit_of_work_did_not_commit(ctx: ServiceContext) -> None:
    account = SystemAccount.REFUND_CONTRA  # created by nothing but this test
    memory = ctx.db.system_account_ids
    assert stored_id(ctx, account.value) is None

    with ctx.unit_of_work() as uow:  # creates the account, then rolls back
        created = uow.ledger.system_account(account)
    assert stored_id(ctx, account.value) is None
    assert memory.get(account.value) is None, created

    with ctx.unit_of_work() as uow:  # creates it and commits: remembered after the COMMIT
        created = uow.ledger.system_account(account)
        assert memory.get(account.value) is None
        uow.commit()
    assert memory.get(account.value) == created == stored_id(ctx, account.value)

    with statements(ctx) as seen, ctx.unit_of_work() as uow:
        assert uow.ledger.system_account(account) == created
        uow.commit()
    assert not [sql for sql in seen if "accounts" in sql], seen
