"""Bulk inserts for the hot write paths (usage batches): COPY on PostgreSQL, executemany else.

``INSERT … VALUES`` once per row costs PostgreSQL a statement per row; ``COPY … FROM
STDIN`` streams the rows into the same table in one statement, with the same constraints
and foreign-key checks, inside the caller's transaction. COPY is used for any number of
rows: measured on the benchmark machine, even one row costs less client CPU by COPY
(180 µs) than by SQLAlchemy's INSERT (205 µs), and eight rows 189 µs against 556 µs — a
small batch (the HTTP path's usual case) pays that per table. A unique violation surfaces as
SQLAlchemy's :class:`~sqlalchemy.exc.IntegrityError`, like the INSERT it replaces, so
callers that retry on a concurrent duplicate keep working.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from psycopg.postgres import types as builtin_types
from psycopg.pq import ExecStatus
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    Integer,
    SmallInteger,
    String,
    Table,
    any_,
    bindparam,
    insert,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

_TUPLES_OK = ExecStatus.TUPLES_OK


def insert_many(connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` (tuples of the ``columns``' values; JSON columns as Python objects)
    into ``table`` in the caller's transaction."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    import psycopg

    statement, types, json_at = _copy_plan(table, tuple(columns))
    driver = driver_connection(connection)
    try:
        with driver.cursor() as cursor:
            _tell_listeners(connection, cursor, statement, None)
            with cursor.copy(statement) as copy:
                if types is not None:
                    copy.set_types(types)
                write = copy.write_row
                if not json_at:
                    for row in rows:
                        write(row)
                    return
                for row in rows:
                    values = list(row)
                    for index in json_at:
                        values[index] = json.dumps(values[index])
                    write(values)
    except psycopg.Error as exc:  # as SQLAlchemy raises it: IntegrityError, OperationalError, …
        raise DBAPIError.instance(statement, None, exc, psycopg.Error) from exc


@functools.cache
def _copy_plan(table: Table, columns: tuple[str, ...]) -> tuple[str, list[int] | None, tuple[int, ...]]:
    """The COPY statement for ``columns`` of ``table``, the binary types of its columns
    (``None``: text COPY) and the positions of its JSON columns; computed once per shape."""
    json_at = tuple(index for index, name in enumerate(columns) if isinstance(table.c[name].type, JSON))
    quoted = ", ".join(f'"{name}"' for name in columns)
    found = [_binary_type(table.c[name].type) for name in columns]
    types = [kind for kind in found if kind is not None]
    binary = len(types) == len(found)
    statement = f'COPY "{table.name}" ({quoted}) FROM STDIN' + (" (FORMAT BINARY)" if binary else "")
    # As OIDs: set_types() looks each name up in the connection's registry otherwise.
    return statement, [builtin_types.get_oid(kind) for kind in types] if binary else None, json_at


def driver_rows(connection: Connection, statement: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Run a PostgreSQL statement of a hot path on the bare driver connection, in the
    caller's transaction; its rows as tuples (none for a statement without a result).

    ``statement`` uses psycopg's ``%(name)s`` placeholders. Through SQLAlchemy Core the same
    statement costs about 300 µs more client CPU (measured on the benchmark machine: the
    usage batch's 64-wallet debit, 470–530 µs against 177–230 µs), spent compiling,
    processing parameters and building result rows — per statement, so per batch, whatever
    its size. What SQLAlchemy gives that matters is kept: statement listeners
    (``before_cursor_execute``, which tests use to see what runs) are called, and a driver
    error is raised as SQLAlchemy's own exception class (:class:`IntegrityError` for a
    unique violation, :class:`~sqlalchemy.exc.OperationalError` for a deadlock), with the
    driver's error as ``.orig``, so :mod:`.errors` reads its SQLSTATE as before. A broken
    connection is found by the pool's check at checkin (:mod:`.engine`)."""
    return _driver_execute(connection, statement, params)[0]


def driver_rowcount(connection: Connection, statement: str, params: Mapping[str, Any]) -> int:
    """:func:`driver_rows` for a statement whose row count is its answer."""
    return _driver_execute(connection, statement, params)[1]


def _driver_execute(
    connection: Connection, statement: str, params: Mapping[str, Any]
) -> tuple[list[tuple[Any, ...]], int]:
    import psycopg

    driver = driver_connection(connection)
    with driver.cursor() as cursor:
        _tell_listeners(connection, cursor, statement, params)
        try:
            cursor.execute(statement, params)
            # Whether the statement returns rows, read from the result's status: asking
            # for ``cursor.description`` would build a Column object per result column.
            result = cursor.pgresult
            rows = cursor.fetchall() if result is not None and result.status == _TUPLES_OK else []
        except psycopg.Error as exc:
            raise DBAPIError.instance(statement, None, exc, psycopg.Error) from exc
        return rows, cursor.rowcount


def driver_connection(connection: Connection) -> Any:
    """The psycopg connection under ``connection`` (in its transaction)."""
    driver = connection.connection.driver_connection
    if driver is None:  # pragma: no cover - a live connection always has one
        raise RuntimeError("no driver connection")
    return driver


def _tell_listeners(connection: Connection, cursor: Any, statement: str, params: Any) -> None:
    """Call the ``before_cursor_execute`` listeners of ``connection`` (its engine's
    included) for a statement run on the bare driver, as SQLAlchemy does for its own."""
    for listener in connection.dispatch.before_cursor_execute:
        listener(connection, cursor, statement, params, None, False)


def _binary_type(column_type: Any) -> str | None:
    """The PostgreSQL type whose binary form COPY sends for a column; ``None``: use text COPY.
    JSON goes as its text (json's binary form is its text), strings as ``text`` (the
    column's own length CHECK still applies: COPY runs every constraint)."""
    if isinstance(column_type, JSON | String):
        return "text"
    if isinstance(column_type, BigInteger):
        return "int8"
    if isinstance(column_type, SmallInteger):
        return "int2"
    if isinstance(column_type, Integer):
        return "int4"
    if isinstance(column_type, Boolean):
        return "bool"
    if isinstance(column_type, DateTime):
        return "timestamptz" if column_type.timezone else "timestamp"
    return None


def text_array(values: Iterable[str]) -> str:
    """``values`` as one PostgreSQL array literal, every element double-quoted (so commas,
    braces, quotes, backslashes, spaces and the word NULL stay text), for a statement that
    casts it (``CAST(:ids AS VARCHAR[])``). One string parameter instead of a list: psycopg
    dumps a list element by element in Python (about 450 µs of CPU for 64 ids on the
    benchmark machine), a string at once."""
    return "{" + ",".join('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values) + "}"


def int_array(values: Iterable[int]) -> str:
    """``values`` as one PostgreSQL array literal of integers (see :func:`text_array`)."""
    return "{" + ",".join(str(int(value)) for value in values) + "}"


def among(connection: Connection, column: Any, values: Sequence[str]) -> Any:
    """``column IN values`` for a batch's string keys. On PostgreSQL ``column = ANY(:array)``:
    one parameter, so the statement compiles once (SQLAlchemy's cache) and the driver does
    not parse a placeholder per key; elsewhere the expanding ``IN``."""
    if connection.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(String)))
    return column.in_(values)


def upsert_factory(connection: Connection) -> Any:
    """The dialect's INSERT, which supports ``on_conflict_do_nothing``."""
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
