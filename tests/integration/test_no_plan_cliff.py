"""Issue 16: no plan cliff. A usage_events table analysed while empty (a fresh or reset
database after a maintenance ANALYZE) made PostgreSQL keep a generic sequential-scan plan
for the batch's duplicate check once psycopg had prepared it; the plan outlived the table's
growth and each lookup scanned the whole table (measured: 0.3 ms → 640 ms at 100k rows).
The application's connections send their statements unnamed (psycopg's ``prepare_threshold``
is off), so each is planned for the values at hand and no generic plan is ever kept. The
session keeps PostgreSQL's default plan cache mode: forcing custom plans for the session
(the first fix) also re-planned every foreign-key check of every row COPY inserts, and
halved the usage engine's write throughput."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from modelfaucet.adapters.db.repositories.usage import SqlUsage
from modelfaucet.services.context import ServiceContext


def test_the_duplicate_check_is_never_a_kept_generic_plan(ctx: ServiceContext) -> None:
    if not ctx.db.is_postgres:
        pytest.skip("prepared-statement plans are PostgreSQL's")
    with ctx.db.engine.connect() as conn:
        conn.execute(text("ANALYZE usage_events"))  # known to be empty: the worst case
        conn.commit()
        usage = SqlUsage(conn, ctx.clock())
        ids = [f"cliff-{n}" for n in range(64)]
        for _ in range(20):  # psycopg prepares after 5 executions, PostgreSQL weighs a generic plan after 5 more
            assert usage.find(ids) == {}
        conn.commit()
        plans = conn.execute(
            text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE '%FROM usage_events%'"
            )
        ).all()
        mode = conn.execute(text("SHOW plan_cache_mode")).scalar_one()
    assert plans == [], f"the duplicate check became a prepared statement that may keep a generic plan: {plans}"
    assert mode == "auto", "foreign-key checks must keep their cached plans (see the module docstring)"
