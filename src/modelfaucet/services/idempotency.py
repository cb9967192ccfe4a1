"""Idempotent writes: the one mechanism every write path that takes an idempotency key uses.

The life of a key (repository ``uow.idempotency``, one row per (scope, key)):

1. :func:`claim` inserts the key as ``in_flight`` in its own short, committed unit of
   work, so a concurrent duplicate sees it at once. If the key is already there:
   - ``done`` with the same request hash → the stored result is returned (and rendered
     again by the edge, byte for byte as the first time) and nothing is applied;
   - a different request hash → ``idempotency_conflict`` naming the fields that differ;
   - ``in_flight`` → ``idempotency_conflict``: the first request is still in progress.
   An expired key (past ``expires_at``, kept at least :data:`RETENTION`) or an abandoned
   claim (``in_flight`` for longer than :data:`STALE_CLAIM`, its process died) is taken
   over with a conditional UPDATE, so only one taker wins.
2. The operation runs in its own unit of work; its typed result is stored *in that unit of
   work*, so the stored result commits with the operation's rows or not at all, and a
   failed operation never leaves a ``done`` record.
3. If the operation fails, :func:`release` deletes the claim so the key can be retried.

:func:`run_idempotent` wires the three together; a router never touches the table. The
request is summarised as a dict of its meaningful fields (after defaults and
normalisation); only a digest of each field is stored, never its value, so a summary can
name what differs without keeping anything sensitive. Results are stored as their
``to_record()`` mapping and restored with the result type's ``from_record``: services
speak in typed results, never in status codes or bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from ..domain.idempotency import KeyState
from ..domain.outcomes import IdempotencyConflict, InvalidRequest
from ..domain.timestamps import as_utc
from .context import ServiceContext
from .repositories import StoredKey
from .unit_of_work import UnitOfWork

log = logging.getLogger("modelfaucet.idempotency")

# Keys are kept at least this long after their result was stored.
RETENTION = timedelta(hours=24)
# An in-flight claim older than this belongs to a request whose process died.
STALE_CLAIM = timedelta(minutes=5)

KEY_MIN_LENGTH = 8
KEY_MAX_LENGTH = 128
# Visible ASCII only: a key is an opaque token, never whitespace or control characters.
_KEY_PATTERN = re.compile(rf"^[\x21-\x7e]{{{KEY_MIN_LENGTH},{KEY_MAX_LENGTH}}}$")

IN_FLIGHT = KeyState.IN_FLIGHT
DONE = KeyState.DONE


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """One request under a key: where the key lives (scope) and what the request says."""

    scope: str
    key: str
    summary: Mapping[str, Any]

    @property
    def field_digests(self) -> dict[str, str]:
        return {name: request_digest(value) for name, value in sorted(self.summary.items())}

    @property
    def request_hash(self) -> str:
        return request_digest(self.field_digests)


class Recordable(Protocol):
    """A typed result that can be stored under a key and restored for a replay."""

    def to_record(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=Recordable)
P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Idempotent(Generic[R]):
    """An operation's result, and whether it is the stored result of an earlier request."""

    result: R
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


def claim(ctx: ServiceContext, request: IdempotentRequest) -> Claim | StoredKey:
    """Claim the key for ``request``, or return the stored key whose result is to be replayed.

    Raises :class:`IdempotencyConflict` if the key belongs to a different request or the
    first request with this key is still in flight.
    """
    with ctx.unit_of_work() as uow:
        now = uow.now
        repo = uow.idempotency
        fields = request.field_digests
        if repo.insert_claim(
            scope=request.scope,
            key=request.key,
            request_hash=request.request_hash,
            summary=fields,
            expires_at=now + RETENTION,
        ):
            uow.commit()
            return Claim(request, now)
        found = repo.get_for_update(request.scope, request.key)
        if found is None:  # deleted between the two statements: a released claim
            raise _in_progress(request)
        if _reclaimable(found, now):
            if repo.take_over(found, request_hash=request.request_hash, summary=fields, expires_at=now + RETENTION):
                uow.commit()
                return Claim(request, now)
            raise _in_progress(request)
        if found.request_hash != request.request_hash:
            differing = differing_fields(found.request_summary, fields)
            raise IdempotencyConflict(
                "This idempotency key was already used with a different request"
                + (f" (differs in: {', '.join(differing)})." if differing else "."),
                details={"idempotency_key": request.key, "differing_fields": differing},
            )
        if found.state == IN_FLIGHT or found.result is None:
            raise _in_progress(request)
        return found


def release(ctx: ServiceContext, held: Claim) -> None:
    """Delete the claim after a failed operation, so the key can be retried."""
    with ctx.unit_of_work() as uow:
        uow.idempotency.release(scope=held.request.scope, key=held.request.key, claimed_at=held.claimed_at)
        uow.commit()


def run_idempotent(
    ctx: ServiceContext,
    request: IdempotentRequest | None,
    operation: Callable[[UnitOfWork], R],
    restore: Callable[[Mapping[str, Any]], R],
) -> Idempotent[R]:
    """Run ``operation`` at most once per key and return its result (or the stored one).

    ``operation`` receives the open unit of work and returns its typed result without
    committing; the result is stored in that same unit of work, then it commits. Without
    a key (``request`` is None) the operation simply runs in its own unit of work.
    """
    return run_idempotent_after(ctx, request, _nothing, lambda uow, _: operation(uow), restore)


def run_idempotent_after(
    ctx: ServiceContext,
    request: IdempotentRequest | None,
    first: Callable[[], P],
    operation: Callable[[UnitOfWork, P], R],
    restore: Callable[[Mapping[str, Any]], R],
) -> Idempotent[R]:
    """:func:`run_idempotent` with a step ``first`` that runs once the key is claimed, outside
    any transaction, and whose result ``operation`` receives.

    For a call to another system (Stripe) that must not hold the write lock while it waits,
    and must not run at all for a replay or a conflicting request. If it fails, the claim is
    released like after any failure.
    """
    if request is None:
        prepared = first()
        with ctx.unit_of_work() as uow:
            result = operation(uow, prepared)
            uow.commit()
        return Idempotent(result)
    held = claim(ctx, request)
    if isinstance(held, StoredKey):
        if held.result is None:  # pragma: no cover - claim() never returns a key without one
            raise _in_progress(request)
        return Idempotent(restore(held.result), replayed=True)
    try:
        prepared = first()
        with ctx.unit_of_work() as uow:
            result = operation(uow, prepared)
            stored = uow.idempotency.complete(
                scope=request.scope,
                key=request.key,
                claimed_at=held.claimed_at,
                result=result.to_record(),
                expires_at=uow.now + RETENTION,
            )
            if not stored:
                # Our claim was taken over (we ran past STALE_CLAIM): apply nothing.
                raise _in_progress(request)
            uow.commit()
    except BaseException:
        try:
            release(ctx, held)
        except Exception:  # the database is gone: the claim goes stale and is reclaimed later
            log.warning("could not release idempotency claim", extra={"scope": request.scope})
        raise
    return Idempotent(result)


def differing_fields(stored: Mapping[str, str] | None, current: Mapping[str, str]) -> list[str]:
    stored = stored or {}
    return sorted(name for name in set(stored) | set(current) if stored.get(name) != current.get(name))


def _nothing() -> None:
    return None


def _reclaimable(found: StoredKey, now: datetime) -> bool:
    if as_utc(found.expires_at) <= now:
        return True
    return found.state == IN_FLIGHT and as_utc(found.created_at) <= now - STALE_CLAIM


def _in_progress(request: IdempotentRequest) -> IdempotencyConflict:
    return IdempotencyConflict(
        "A request with this idempotency key is still in progress; retry after it has finished.",
        details={"idempotency_key": request.key, "in_progress": True},
    )


def request_digest(value: Any, *, ensure_ascii: bool = False) -> str:
    """The SHA-256 (hex) of ``value`` as canonical JSON: sorted keys, no spaces, UTF-8.

    The one request hasher: idempotency keys store these digests, and so do usage events
    (``request_hash``, their duplicate check). Stored digests must keep matching, so each
    caller keeps the spelling it was first stored with: usage events were hashed with
    non-ASCII characters escaped (``ensure_ascii=True``), idempotency keys without.
    """
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=ensure_ascii, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
