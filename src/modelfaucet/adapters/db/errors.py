"""What a database error means for the caller: a lost race to decide again, or anything else.

SQLAlchemy wraps the driver's exception (``exc.orig``); PostgreSQL names the cause with a
SQLSTATE, SQLite with an extended error name.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError

# deadlock_detected, serialization_failure: the transaction was rolled back whole.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
_UNIQUE_VIOLATION_SQLSTATE = "23505"
_SQLITE_UNIQUE = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})


def sqlstate(exc: DBAPIError) -> str | None:
    state = getattr(exc.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def lost_a_race(exc: BaseException) -> bool:
    """A deadlock or serialisation failure: nothing was kept, and running again is safe."""
    return isinstance(exc, DBAPIError) and sqlstate(exc) in RETRYABLE_SQLSTATES


def unique_violation(exc: IntegrityError) -> bool:
    """The row's unique key is already taken (on PostgreSQL possibly by a transaction that
    committed while this one waited for it)."""
    return sqlstate(exc) == _UNIQUE_VIOLATION_SQLSTATE or getattr(exc.orig, "sqlite_errorname", None) in _SQLITE_UNIQUE
