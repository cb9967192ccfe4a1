"""The migrated schema lists exactly the domain's statuses and kinds (SQLite and PostgreSQL).

``tables.py`` builds every CHECK list and partial-index predicate from a domain enum; the
migrations are written by hand. This reads what the migrated database really enforces —
``pg_get_constraintdef`` / ``pg_indexes`` on PostgreSQL, the ``sqlite_master`` DDL on
SQLite — and compares it with the enum, so a status added to the code but not to a
migration (or left behind in one) fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

import pytest
from sqlalchemy import CheckConstraint, Connection, text

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import metadata
from modelfaucet.domain.adjustments import AdjustmentKind, Direction
from modelfaucet.domain.holds import OPEN_HOLD_STATUSES, HoldStatus
from modelfaucet.domain.idempotency import KeyState
from modelfaucet.domain.ledger import CONSTRAINED_SCOPES, OwnerScope
from modelfaucet.domain.payouts import OPEN_STATUSES, PayoutStatus
from modelfaucet.domain.rating import RouteMode
from modelfaucet.domain.reversals import Movement, ReversalKind, ReversalStatus
from modelfaucet.domain.stripe_sync import SessionStatus
from modelfaucet.domain.topups import TopupStatus
from modelfaucet.domain.web_sessions import Principal

# (table, constraint, the values it must list)
CHECKS: list[tuple[str, str, Iterable[StrEnum]]] = [
    ("accounts", "ck_accounts_owner_scope", OwnerScope),
    ("accounts", "ck_accounts_constrained_balance", CONSTRAINED_SCOPES),
    ("stripe_topups", "ck_stripe_topups_status", TopupStatus),
    ("payouts", "ck_payouts_status", PayoutStatus),
    ("adjustments", "ck_adjustments_kind", AdjustmentKind),
    ("adjustments", "ck_adjustments_direction", Direction),
    ("idempotency_keys", "ck_idempotency_keys_state", KeyState),
    ("usage_events", "ck_usage_events_route_mode", RouteMode),
    ("stripe_reversals", "ck_stripe_reversals_kind", ReversalKind),
    ("stripe_reversals", "ck_stripe_reversals_status", ReversalStatus),
    ("stripe_reversal_postings", "ck_stripe_reversal_postings_movement", Movement),
    ("stripe_offline_sessions", "ck_stripe_offline_sessions_status", SessionStatus),
    ("holds", "ck_holds_status", HoldStatus),
    ("holds", "ck_holds_ended", OPEN_HOLD_STATUSES),
    ("web_sessions", "ck_web_sessions_principal", Principal),
]

# (index, the values its WHERE clause must list)
PARTIAL_INDEXES: list[tuple[str, Iterable[StrEnum]]] = [
    ("uq_payouts_open_per_developer", OPEN_STATUSES),
]


def quoted_values(sql: str) -> list[str]:
    return re.findall(r"'([^']*)'", sql)


def parenthesised_after(sql: str, marker: str) -> str:
    """The balanced ``( … )`` that follows ``marker`` in a DDL statement."""
    start = sql.index(marker) + len(marker)
    depth = 0
    for position in range(start, len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[position], 0)
        if depth == 0:
            return sql[start : position + 1]
    raise AssertionError(f"unbalanced parentheses after {marker!r} in {sql!r}")


def check_clause(conn: Connection, table: str, constraint: str) -> str:
    if conn.dialect.name == "postgresql":
        found = conn.execute(
            text(
                "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c "
                "JOIN pg_class t ON t.oid = c.conrelid "
                "WHERE c.contype = 'c' AND t.relname = :table AND c.conname = :constraint"
            ),
            {"table": table, "constraint": constraint},
        ).scalar_one_or_none()
        assert found is not None, f"{table} has no CHECK constraint {constraint}"
        return str(found)
    ddl = str(conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": table}).scalar_one())
    marker = f"CONSTRAINT {constraint} CHECK "
    assert marker in ddl, f"{table} has no CHECK constraint {constraint}: {ddl}"
    return parenthesised_after(ddl, marker)


def index_predicate(conn: Connection, index: str) -> str:
    if conn.dialect.name == "postgresql":
        sql = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = :i"), {"i": index}).scalar_one()
    else:
        sql = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :i"), {"i": index}
        ).scalar_one()
    _, where, predicate = str(sql).partition(" WHERE ")
    assert where, f"{index} is not a partial index: {sql}"
    return predicate


@pytest.mark.parametrize(
    ("table", "constraint", "values"),
    [pytest.param(table, constraint, values, id=constraint) for table, constraint, values in CHECKS],
)
def test_each_check_constraint_lists_exactly_the_values_of_its_enum(
    database: Database, table: str, constraint: str, values: Iterable[StrEnum]
) -> None:
    with database.engine.connect() as conn:
        clause = check_clause(conn, table, constraint)
    assert sorted(quoted_values(clause)) == sorted(str(value) for value in values), clause


@pytest.mark.parametrize(("index", "values"), PARTIAL_INDEXES, ids=[index for index, _ in PARTIAL_INDEXES])
def test_each_partial_index_lists_exactly_the_values_of_its_enum(
    database: Database, index: str, values: Iterable[StrEnum]
) -> None:
    with database.engine.connect() as conn:
        predicate = index_predicate(conn, index)
    assert sorted(quoted_values(predicate)) == sorted(str(value) for value in values), predicate


def test_every_value_list_the_tables_spell_out_is_checked_here() -> None:
    """A new ``IN (…)`` in ``tables.py`` must join the lists above, or this fails."""
    listed_checks = {
        str(constraint.name)
        for table in metadata.sorted_tables
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint) and "'" in str(constraint.sqltext)
    }
    listed_indexes = {
        str(index.name)
        for table in metadata.sorted_tables
        for index in table.indexes
        if index.dialect_options["postgresql"].get("where") is not None
        or index.dialect_options["sqlite"].get("where") is not None
    }
    assert listed_checks == {constraint for _, constraint, _ in CHECKS}
    assert listed_indexes == {index for index, _ in PARTIAL_INDEXES}
