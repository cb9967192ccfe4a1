"""Shared plumbing of the reliability tests: long mode, fresh databases, invariant checks."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sqlalchemy import func, select, text

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import accounts, metadata
from modelfaucet.domain.ledger import CONSTRAINED_SCOPES
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.reconcile import reconcile_ledger

LONG = os.environ.get("MODELFAUCET_LONG_TESTS") == "1"


def scaled(normal: int, long: int) -> int:
    """``normal`` in the regular suite, ``long`` with MODELFAUCET_LONG_TESTS=1."""
    return long if LONG else normal


class FreshDatabases:
    """Hands out an empty, migrated database per call, from the URL the ``db_url`` fixture gave.

    SQLite: a copy of the pristine file taken before anything touched it. PostgreSQL: the
    same database, truncated. Used where one test needs many fresh databases (a hypothesis
    state machine builds one per example).
    """

    def __init__(self, db_url: str, tmp_path: Path) -> None:
        self.db_url = db_url
        self.tmp_path = tmp_path
        self.count = 0
        self.pristine: Path | None = None
        if db_url.startswith("sqlite"):
            source = Path(db_url.removeprefix("sqlite:///"))
            self.pristine = tmp_path / "pristine.sqlite3"
            shutil.copyfile(source, self.pristine)

    def new(self) -> Database:
        self.count += 1
        if self.pristine is not None:
            path = self.tmp_path / f"example-{self.count}.sqlite3"
            shutil.copyfile(self.pristine, path)
            return Database.from_url(f"sqlite:///{path}")
        database = Database.from_url(self.db_url, pool_size=2)
        names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
        with database.transaction() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        return database


def invariant_violations(ctx: ServiceContext) -> list[str]:
    """Every ARCHITECTURE invariant that can be read from the database, as readable failures."""
    problems: list[str] = []
    report = reconcile_ledger(ctx)
    if not report.ok:
        failing = {name: check.offending[:3] for name, check in ((c.name, c) for c in report.checks) if not check.ok}
        problems.append(f"reconciliation not clean: mismatches={report.mismatch_count} checks={failing}")
    with ctx.db.read() as conn:
        total = int(conn.execute(select(func.coalesce(func.sum(accounts.c.balance_units), 0))).scalar_one())
        if total != 0:
            problems.append(f"balances sum to {total}, not 0")
        constrained = [str(scope) for scope in CONSTRAINED_SCOPES]
        rows = conn.execute(
            select(accounts.c.id, accounts.c.balance_units, accounts.c.reserved_units).where(
                accounts.c.owner_scope.in_(constrained)
            )
        ).all()
    for row in rows:
        if int(row.balance_units) < 0:
            problems.append(f"wallet {row.id} is negative: {row.balance_units}")
        if int(row.balance_units) < int(row.reserved_units):
            problems.append(f"wallet {row.id} below its reservation: {row.balance_units} < {row.reserved_units}")
        if int(row.reserved_units) < 0:
            problems.append(f"wallet {row.id} has a negative reservation: {row.reserved_units}")
    return problems


# --- live servers -------------------------------------------------------------------------

LIVE_ENV = {
    "STRIPE_WEBHOOK_SECRET": "whsec_reliability_not_a_secret",
    "MODELFAUCET_RATE_LIMIT_PER_MINUTE": "0",
}


def usage_body(request_id: str, user: str, *, input_tokens: int = 1200, output_tokens: int = 300) -> dict[str, object]:
    return {
        "request_id": request_id,
        "public_app_id": "app_pub_demo",
        "external_user_id": user,
        "feature_key": "customer_reply",
        "route_mode": "platform",
        "provider": "mock",
        "model": "mock-small",
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cached_tokens": 0,
    }


def webhook_event(event_id: str, session_id: str, cents: int, event_type: str = "checkout.session.completed") -> bytes:
    import json

    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "data": {
                "object": {
                    "id": session_id,
                    "object": "checkout.session",
                    "amount_total": cents,
                    "currency": "usd",
                    "payment_status": "paid",
                }
            },
        },
        separators=(",", ":"),
    ).encode()


def signed_headers(payload: bytes) -> dict[str, str]:
    import time

    from modelfaucet.adapters.stripe.signature import sign

    return {
        "Stripe-Signature": sign(payload, LIVE_ENV["STRIPE_WEBHOOK_SECRET"], int(time.time())),
        "Content-Type": "application/json",
    }
