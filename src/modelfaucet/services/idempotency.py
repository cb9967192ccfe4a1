"""Idempotent writes: the one mechanism every write path that takes an idempotency key uses.

The life of a key (table ``idempotency_keys``, primary key (scope, key)):

1. :func:`claim` inserts the key as ``in_flight`` in its own short, committed transaction,
   so a concurrent duplicate sees it at once. If the key is already there:
   - ``done`` with the same request hash → the stored result is replayed (status and body
     byte for byte) and nothing is applied;
   - a different request hash → 409 ``idempotency_conflict`` naming the fields that differ;
   - ``in_flight`` → 409 ``idempotency_conflict``: the first request is still in progress.
   An expired key (past ``expires_at``, kept at least :data:`RETENTION`) or an abandoned
   claim (``in_flight`` for longer than :data:`STALE_CLAIM`, its process died) is taken
   over with a conditional UPDATE, so only one taker wins.
2. The operation runs in its own transaction and calls :func:`complete` with its response
   *inside that transaction*: the stored result commits with the operation's rows or not
   at all, so a failed operation never leaves a ``done`` record.
3. If the operation fails, :func:`release` deletes the claim so the key can be retried.

:func:`run_idempotent` wires the three together for a service; a router never touches
the table. The request is summarised as a dict of its meaningful fields (after defaults
and normalisation); only a digest of each field is stored, never its value, so a summary
can name what differs without keeping anything sensitive.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, select, update

from ..adapters.db.tables import idempotency_keys
from ..domain.outcomes import IdempotencyConflict, InvalidRequest
from .context import ServiceContext
from .formatting import as_utc

log = logging.getLogger("modelfaucet.idempotency")

# Keys are kept at least this long after their result was stored.
RETENTION = timedelta(hours=24)
# An in-flight claim older than this belongs to a request whose process died.
STALE_CLAIM = timedelta(minutes=5)

KEY_MIN_LENGTH = 8
KEY_MAX_LENGTH = 128
# Visible ASCII only: a key is an opaque token, never whitespace or control characters.
_KEY_PATTERN = re.compile(rf"^[\x21-\x7e]{{{KEY_MIN_LENGTH},{KEY_MAX_LENGTH}}}$")

IN_FLIGHT = "in_flight"
DONE = "done"


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """One request under a key: where the key lives (scope) and what the request says."""

    scope: str
    key: str
    summary: Mapping[str, Any]

    @property
    def field_digests(self) -> dict[str, str]:
        return {name: _digest(value) for name, value in sorted(self.summary.items())}

    @property
    def request_hash(self) -> str:
        return _digest(self.field_digests)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response as sent: the status and the exact body bytes."""

    status: int
    body: bytes
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Claim:
    """Proof that this request holds the key (the claim time tells it from a later taker)."""

    request: IdempotentRequest
    claimed_at: datetime


def resolve_key(body_key: str | None, header_key: str | None) -> str | None:
    """The request's idempotency key from the body field or the ``Idempotency-Key`` header.

    Both may be given only if they are equal. A key is 8–128 visible ASCII characters.
    """
    if body_key is not None and header_key is not None and body_key != header_key:
        raise InvalidRequest(
            "The idempotency_key field and the Idempotency-Key header differ; send one, or the same in both.",
            details={"field": "idempotency_key"},
        )
    key = body_key if body_key is not None else header_key
    if key is None:
        return None
    if not _KEY_PATTERN.fullmatch(key):
        raise InvalidRequest(
            f"idempotency_key must be {KEY_MIN_LENGTH} to {KEY_MAX_LENGTH} visible ASCII characters.",
            details={"field": "idempotency_key"},
        )
    return key


def render_json(body: Any) -> bytes:
    """The bytes of a JSON response body, rendered the way the API renders JSON."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def claim(ctx: ServiceContext, request: IdempotentRequest) -> Claim | StoredResponse:
    """Claim the key for ``request``, or return the stored result to replay.

    Raises :class:`IdempotencyConflict` if the key belongs to a different request or the
    first request with this key is still in flight.
    """
    now = ctx.clock()
    with ctx.db.transaction() as conn:
        inserted = conn.execute(
            ctx.db.insert(idempotency_keys)
            .values(
                scope=request.scope,
                key=request.key,
                request_hash=request.request_hash,
                request_summary=request.field_digests,
                state=IN_FLIGHT,
                response_status=None,
                response_body=None,
                created_at=now,
                expires_at=now + RETENTION,
            )
            .on_conflict_do_nothing(index_elements=["scope", "key"])
            .returning(idempotency_keys.c.key)
        ).first()
        if inserted is not None:
            return Claim(request, now)
        row = conn.execute(select(idempotency_keys).where(_key_is(request)).with_for_update()).one()
        if _reclaimable(row, now):
            taken = conn.execute(
                update(idempotency_keys)
                .where(
                    and_(
                        _key_is(request),
                        idempotency_keys.c.state == row.state,
                        idempotency_keys.c.created_at == row.created_at,
                    )
                )
                .values(
                    request_hash=request.request_hash,
                    request_summary=request.field_digests,
                    state=IN_FLIGHT,
                    response_status=None,
                    response_body=None,
                    created_at=now,
                    expires_at=now + RETENTION,
                )
            )
            if taken.rowcount == 1:
                return Claim(request, now)
            raise _in_progress(request)
        if row.request_hash != request.request_hash:
            differing = differing_fields(row.request_summary, request.field_digests)
            raise IdempotencyConflict(
                "This idempotency key was already used with a different request"
                + (f" (differs in: {', '.join(differing)})." if differing else "."),
                details={"idempotency_key": request.key, "differing_fields": differing},
            )
        if row.state == IN_FLIGHT:
            raise _in_progress(request)
        return StoredResponse(int(row.response_status), str(row.response_body).encode("utf-8"), replayed=True)


def complete(conn: Connection, held: Claim, response: StoredResponse, *, now: datetime) -> None:
    """Store the result in the operation's own transaction (committed with its rows or not at all)."""
    stored = conn.execute(
        update(idempotency_keys)
        .where(
            and_(
                _key_is(held.request),
                idempotency_keys.c.state == IN_FLIGHT,
                idempotency_keys.c.created_at == held.claimed_at,
            )
        )
        .values(
            state=DONE,
            response_status=response.status,
            response_body=response.body.decode("utf-8"),
            expires_at=now + RETENTION,
        )
    )
    if stored.rowcount != 1:
        # Our claim was taken over (we ran past STALE_CLAIM): apply nothing.
        raise _in_progress(held.request)


def release(ctx: ServiceContext, held: Claim) -> None:
    """Delete the claim after a failed operation, so the key can be retried."""
    with ctx.db.transaction() as conn:
        conn.execute(
            delete(idempotency_keys).where(
                and_(
                    _key_is(held.request),
                    idempotency_keys.c.state == IN_FLIGHT,
                    idempotency_keys.c.created_at == held.claimed_at,
                )
            )
        )


def run_idempotent(
    ctx: ServiceContext,
    request: IdempotentRequest | None,
    operation: Callable[[Connection], StoredResponse],
) -> StoredResponse:
    """Run ``operation`` at most once per key and return its response (or the replay).

    ``operation`` receives the open write transaction and returns the response it wants
    sent; the response is stored in that same transaction. Without a key (``request`` is
    None) the operation simply runs in its own transaction.
    """
    if request is None:
        with ctx.db.transaction() as conn:
            return operation(conn)
    held = claim(ctx, request)
    if isinstance(held, StoredResponse):
        return held
    try:
        with ctx.db.transaction() as conn:
            response = operation(conn)
            complete(conn, held, response, now=ctx.clock())
    except BaseException:
        try:
            release(ctx, held)
        except Exception:  # the database is gone: the claim goes stale and is reclaimed later
            log.warning("could not release idempotency claim", extra={"scope": request.scope})
        raise
    return response


def differing_fields(stored: Mapping[str, str] | None, current: Mapping[str, str]) -> list[str]:
    stored = stored or {}
    return sorted(name for name in set(stored) | set(current) if stored.get(name) != current.get(name))


def _key_is(request: IdempotentRequest) -> Any:
    return and_(idempotency_keys.c.scope == request.scope, idempotency_keys.c.key == request.key)


def _reclaimable(row: Any, now: datetime) -> bool:
    if as_utc(row.expires_at) <= now:
        return True
    return bool(row.state == IN_FLIGHT and as_utc(row.created_at) <= now - STALE_CLAIM)


def _in_progress(request: IdempotentRequest) -> IdempotencyConflict:
    return IdempotencyConflict(
        "A request with this idempotency key is still in progress; retry after it has finished.",
        details={"idempotency_key": request.key, "in_progress": True},
    )


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
