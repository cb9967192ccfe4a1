"""Audit trail writer: one row per admin write or money transition, in the caller's transaction.

The trail is tamper-evident: every row stores ``prev_hash`` (the previous row's hash) and
``row_hash`` = SHA-256 over a canonical serialisation of the row's content and
``prev_hash``. Editing, deleting or reordering any row breaks the chain at that row or the
next; ``modelfaucet audit verify`` recomputes it (``services/verify_audit.py``).

Ordering: rows are chained in id order, and two writers must never both extend the same
tail. On PostgreSQL the writer takes a transaction-scoped advisory lock before reading the
tail, so chained inserts serialise until commit; SQLite write transactions already
serialise (BEGIN IMMEDIATE). Call :func:`record` as the *last* write of a transaction so the
lock is held as briefly as possible and is never taken before row locks (no lock cycles).

What the chain does not prove: that the newest rows were not cut off the end. Anchor the
tail hash elsewhere (``modelfaucet audit verify`` prints it) when that matters.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, text

from .tables import audit_log

GENESIS_HASH = "0" * 64
# pg_advisory_xact_lock key reserved for the audit chain ("MFAUDIT" in ASCII).
AUDIT_CHAIN_LOCK_KEY = 0x4D4641554449_54
HASHED_FIELDS = (
    "created_at",
    "actor",
    "action",
    "resource_type",
    "resource_id",
    "before_status",
    "after_status",
    "amount_units",
    "note",
    "request_id",
    "details",
)


def canonical_timestamp(value: datetime) -> str:
    """UTC, microseconds, one spelling whatever the database hands back."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(fields: dict[str, Any], prev_hash: str) -> str:
    content: dict[str, Any] = {name: fields.get(name) for name in HASHED_FIELDS}
    content["created_at"] = canonical_timestamp(fields["created_at"])
    if content["amount_units"] is not None:
        content["amount_units"] = int(content["amount_units"])
    content["prev_hash"] = prev_hash
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _lock_chain(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_CHAIN_LOCK_KEY})


def chain_tail(connection: Connection) -> str:
    last = connection.execute(select(audit_log.c.row_hash).order_by(audit_log.c.id.desc()).limit(1)).first()
    if last is None or last.row_hash is None:
        return GENESIS_HASH
    return str(last.row_hash)


def record(
    connection: Connection,
    *,
    now: datetime,
    actor: str,
    action: str,
    resource_type: str,
    resource_id: str | None = None,
    before_status: str | None = None,
    after_status: str | None = None,
    amount_units: int | None = None,
    note: str | None = None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    # Round-trip details through JSON now so the hash covers exactly what the database returns.
    stored_details = None if details is None else json.loads(json.dumps(details, allow_nan=False))
    fields: dict[str, Any] = {
        "created_at": now.astimezone(UTC) if now.tzinfo is not None else now.replace(tzinfo=UTC),
        "actor": actor,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "before_status": before_status,
        "after_status": after_status,
        "amount_units": amount_units,
        "note": note,
        "request_id": request_id,
        "details": stored_details,
    }
    _lock_chain(connection)
    prev = chain_tail(connection)
    connection.execute(insert(audit_log).values(**fields, prev_hash=prev, row_hash=row_hash(fields, prev)))
