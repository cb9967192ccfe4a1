"""record_usage: rate model calls and post them to the ledger, many per database transaction.

:func:`record_usage_batch` is the one decision-and-write path; the group-commit engine
(:mod:`modelfaucet.services.posting_engine`) and the direct path (CLI, tests) both call it.
For a batch it runs, inside ONE write transaction:

1. **Idempotency first.** Look up every ``request_id`` in ``usage_events`` (the unique
   constraint is the source of truth, never process memory). A known id with the same
   content is a ``duplicate`` (the original result, nothing posted); with other content it
   is refused ``idempotency_conflict`` naming the differing fields. A repeated id inside
   the batch is judged against its first occurrence.
2. **Load** apps, features, model prices, end users and their wallets; **lock** the
   end-user wallets that will be debited (``SELECT … FOR UPDATE`` ordered by id on
   PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises writers).
3. **Decide with no I/O**, event by event in order: rate it (pure, :mod:`domain.rating`),
   then check the end user's balance with :func:`domain.ledger.apply_net_changes` against
   the running in-memory balances, so no event can overdraw a wallet whatever else is in
   the batch. Unaffordable → ``insufficient_balance`` for that event only.
4. **Write once**: each account's stored balance moves once with the batch's summed
   change (the platform, provider-cost and developer rows are touched once per batch, not
   once per event), then every accepted event's own balanced transaction, postings and
   usage row are bulk-inserted.

If a concurrent process commits the same ``request_id`` first, the usage insert hits the
unique constraint, the whole transaction rolls back and the batch is decided again (the
lookup now sees the committed row). PostgreSQL deadlock/serialisation errors retry too.

An unknown end user has no wallet and so no balance: a priced call is refused 402; a free
call (zero price) creates the end user and an empty wallet, so its usage is still recorded.
No audit row is written per usage event: the ledger and the usage row are the record.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, and_, bindparam, select, text, tuple_, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..adapters.db import ledger
from ..adapters.db.bulk import insert_many
from ..adapters.db.repositories.catalog import SqlCatalog
from ..adapters.db.tables import accounts, app_features, apps, end_users, model_prices, usage_events
from ..domain.identity import external_user_hash, new_id
from ..domain.ledger import (
    PLATFORM_OWNER_ID,
    PROVIDER_COST_OWNER_ID,
    AccountState,
    OwnerScope,
    Transaction,
    apply_net_changes,
)
from ..domain.money import format_usd
from ..domain.outcomes import (
    Forbidden,
    IdempotencyConflict,
    InsufficientBalance,
    LedgerInvariantViolation,
    NotFound,
    Refusal,
)
from ..domain.rating import ModelPrice, Pricing, RatedUsage, RouteMode, Usage, UsageAccounts, rate, usage_transaction
from .context import ServiceContext
from .formatting import iso

MAX_ATTEMPTS = 4
_IN_CHUNK = 500
# PostgreSQL: deadlock_detected, serialization_failure — safe to decide the batch again.
_RETRY_SQLSTATES = {"40P01", "40001"}


@dataclass(frozen=True, slots=True)
class UsageEvent:
    request_id: str
    public_app_id: str
    external_user_id: str
    feature_key: str
    route_mode: RouteMode
    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    upstream_cost_units: int | None = None

    def fingerprint(self) -> dict[str, Any]:
        """What makes two reports of one request_id "the same": all fields, the user hashed."""
        return {
            "public_app_id": self.public_app_id,
            "external_user_id": external_user_hash(self.public_app_id, self.external_user_id),
            "feature_key": self.feature_key,
            "route_mode": self.route_mode.value,
            "provider": self.provider,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "upstream_cost_usd": None if self.upstream_cost_units is None else format_usd(self.upstream_cost_units),
        }


@dataclass(slots=True)
class UsageOutcome:
    request_id: str
    status: str  # recorded | duplicate | rejected
    result: dict[str, Any] | None = None
    error: Refusal | None = None

    @property
    def ok(self) -> bool:
        return self.status != "rejected"


def _hash(fingerprint: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class AccountIds:
    """Ids of the credit-only accounts a usage batch posts to (platform, provider cost,
    developer wallets), remembered per process.

    Safe to keep in memory: an account's id never changes once its row exists (accounts are
    never deleted), and an id is only remembered when it was read back as an existing row —
    never one the current batch created, which is not committed yet and vanishes if the
    batch rolls back. Nothing about balances or decisions lives here.
    """

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> str | None:
        return self._ids.get(key)

    def remember(self, key: tuple[str, str], account_id: str) -> None:
        with self._lock:
            self._ids[key] = account_id


def record_usage(ctx: ServiceContext, event: UsageEvent) -> UsageOutcome:
    """The direct path for one event (no batching): the same decision code."""
    return record_usage_batch(ctx, [event])[0]


def record_usage_batch(
    ctx: ServiceContext, events: Sequence[UsageEvent], *, account_ids: AccountIds | None = None
) -> list[UsageOutcome]:
    """Decide and post ``events`` in one transaction; one outcome per event, in order.

    ``account_ids`` (the group-commit engine passes its own) saves the look-ups of the
    credit-only accounts' ids; without it they are read in one query per batch."""
    if not events:
        return []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            now = ctx.clock()
            with ctx.db.transaction() as conn:
                return _Batch(conn, ctx, events, now, account_ids).run()
        except IntegrityError:
            # A concurrent transaction committed one of these request ids: decide again.
            if attempt == MAX_ATTEMPTS:
                raise
        except DBAPIError as exc:
            if _sqlstate(exc) not in _RETRY_SQLSTATES or attempt == MAX_ATTEMPTS:
                raise
    raise LedgerInvariantViolation("unreachable")  # pragma: no cover


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


@dataclass(slots=True)
class _Pending:
    index: int
    event: UsageEvent
    fingerprint: dict[str, Any]
    request_hash: str
    app: Any = None
    end_user_id: str | None = None
    wallet_id: str | None = None
    rated: RatedUsage | None = None
    snapshot: dict[str, Any] = field(default_factory=dict)
    transaction: Transaction | None = None
    balance_after_units: int = 0


class _Batch:
    def __init__(
        self,
        conn: Connection,
        ctx: ServiceContext,
        events: Sequence[UsageEvent],
        now: datetime,
        account_ids: AccountIds | None,
    ) -> None:
        self.conn = conn
        self.account_ids = account_ids
        self.ctx = ctx
        self.events = events
        self.now = now
        self.outcomes: list[UsageOutcome | None] = [None] * len(events)
        # (index, index of its first occurrence) for a request id repeated in the batch
        self.repeats: list[tuple[int, int]] = []

    # -- the steps ---------------------------------------------------------------------

    def run(self) -> list[UsageOutcome]:
        pending = self._idempotency()
        pending = self._rate(pending)
        accepted = self._decide(pending)
        self._write(accepted)
        return [outcome for outcome in self.outcomes if outcome is not None]

    def _reject(self, index: int, error: Refusal) -> None:
        self.outcomes[index] = UsageOutcome(self.events[index].request_id, "rejected", error=error)

    def _idempotency(self) -> list[_Pending]:
        ids = sorted({event.request_id for event in self.events})
        stored: dict[str, Any] = {}
        for chunk in _chunks(ids):
            for found in self.conn.execute(select(usage_events).where(usage_events.c.request_id.in_(chunk))):
                stored[found.request_id] = found
        # Each event's fingerprint (it hashes the end user with an HMAC) is computed once
        # and serves the idempotency decision, conflicts and the rating snapshot.
        fingerprints = [event.fingerprint() for event in self.events]
        hashes = [_hash(fingerprint) for fingerprint in fingerprints]
        first_in_batch: dict[str, int] = {}
        pending: list[_Pending] = []
        for index, event in enumerate(self.events):
            request_hash = hashes[index]
            row = stored.get(event.request_id)
            if row is not None:
                if row.request_hash == request_hash:
                    self.outcomes[index] = UsageOutcome(event.request_id, "duplicate", result=_stored_result(row))
                else:
                    original = row.rating_snapshot.get("request", {})
                    self._reject(index, _conflict(event.request_id, fingerprints[index], original))
                continue
            first = first_in_batch.get(event.request_id)
            if first is not None:
                if hashes[first] == request_hash:
                    self.repeats.append((index, first))
                else:
                    self._reject(index, _conflict(event.request_id, fingerprints[index], fingerprints[first]))
                continue
            first_in_batch[event.request_id] = index
            pending.append(_Pending(index, event, fingerprints[index], request_hash))
        return pending

    def _rate(self, pending: list[_Pending]) -> list[_Pending]:
        if not pending:
            return []
        conn = self.conn
        public_ids = sorted({p.event.public_app_id for p in pending})
        app_rows = {
            row.public_app_id: row for row in conn.execute(select(apps).where(apps.c.public_app_id.in_(public_ids)))
        }
        app_ids = [row.id for row in app_rows.values()]
        features = {
            (row.app_id, row.feature_key): row
            for row in (conn.execute(select(app_features).where(app_features.c.app_id.in_(app_ids))) if app_ids else [])
        }
        pairs = sorted({(p.event.provider, p.event.model) for p in pending})
        prices = {
            (row.provider, row.model): row
            for row in conn.execute(
                select(model_prices).where(tuple_(model_prices.c.provider, model_prices.c.model).in_(pairs))
            )
        }
        hashes = {}
        for p in pending:
            app = app_rows.get(p.event.public_app_id)
            if app is not None:
                hashes[p.index] = (app.id, external_user_hash(app.id, p.event.external_user_id))
        users: dict[tuple[str, str], str] = {}
        wanted = sorted(set(hashes.values()))
        for chunk in _chunks(wanted):
            stmt = select(end_users.c.id, end_users.c.app_id, end_users.c.external_user_hash).where(
                tuple_(end_users.c.app_id, end_users.c.external_user_hash).in_(chunk)
            )
            for row in conn.execute(stmt):
                users[(row.app_id, row.external_user_hash)] = row.id

        rated: list[_Pending] = []
        for p in pending:
            event = p.event
            app = app_rows.get(event.public_app_id)
            if app is None:
                self._reject(p.index, NotFound("App was not found.", details={"public_app_id": event.public_app_id}))
                continue
            if app.status != "active":
                self._reject(p.index, Forbidden("App is not active.", details={"public_app_id": event.public_app_id}))
                continue
            feature = features.get((app.id, event.feature_key))
            try:
                pricing = _pricing(app, feature)
                price_row = prices.get((event.provider, event.model))
                price = (
                    None
                    if price_row is None
                    else ModelPrice(
                        int(price_row.input_per_1m_units),
                        int(price_row.output_per_1m_units),
                        int(price_row.cached_per_1m_units),
                    )
                )
                usage = Usage(
                    event.route_mode,
                    event.input_tokens,
                    event.output_tokens,
                    event.cached_tokens,
                    reported_upstream_units=event.upstream_cost_units,
                )
                p.rated = rate(usage, pricing, price)
            except Refusal as refusal:
                self._reject(p.index, refusal)
                continue
            p.app = app
            p.end_user_id = users.get(hashes[p.index])
            p.snapshot = {
                "request": p.fingerprint,
                "pricing": {
                    "source": "feature" if feature is not None else "app_default",
                    "feature_pricing_version": None if feature is None else int(feature.pricing_version),
                    "markup_bps": pricing.markup_bps,
                    "channel_share_bps": pricing.channel_share_bps,
                    "explicit_gateway_fee_units": pricing.explicit_gateway_fee_units,
                },
                "model_price": None
                if price_row is None
                else {
                    "version": int(price_row.version),
                    "input_per_1m_units": int(price_row.input_per_1m_units),
                    "output_per_1m_units": int(price_row.output_per_1m_units),
                    "cached_per_1m_units": int(price_row.cached_per_1m_units),
                },
                "upstream_source": (
                    "none"
                    if not event.route_mode.carries_markup
                    else "reported"
                    if event.upstream_cost_units is not None
                    else "price_table"
                ),
            }
            rated.append(p)
        return rated

    def _decide(self, pending: list[_Pending]) -> list[_Pending]:
        conn = self.conn
        user_ids = sorted({p.end_user_id for p in pending if p.end_user_id is not None})
        wallets: dict[str, AccountState] = {}
        wallet_of_user: dict[str, str] = {}
        for chunk in _chunks(user_ids):
            stmt = (
                select(accounts.c.id, accounts.c.owner_id, accounts.c.balance_units, accounts.c.reserved_units)
                .where(and_(accounts.c.owner_scope == OwnerScope.END_USER.value, accounts.c.owner_id.in_(chunk)))
                .order_by(accounts.c.id)
            )
            if self.ctx.db.is_postgres:
                stmt = stmt.with_for_update()
            for row in conn.execute(stmt):
                wallets[row.id] = AccountState(
                    row.id, OwnerScope.END_USER, int(row.balance_units), int(row.reserved_units)
                )
                wallet_of_user[row.owner_id] = row.id
        accepted: list[_Pending] = []
        for p in pending:
            rated = p.rated
            if rated is None:
                raise LedgerInvariantViolation("deciding an unrated event")
            retail = rated.retail_price_units
            wallet_id = None if p.end_user_id is None else wallet_of_user.get(p.end_user_id)
            if wallet_id is None:
                if retail > 0:
                    self._reject(
                        p.index,
                        InsufficientBalance(
                            "The end user has no wallet balance for this call.",
                            details={"available_usd": format_usd(0), "requested_usd": format_usd(retail)},
                        ),
                    )
                    continue
                accepted.append(p)
                continue
            state = wallets[wallet_id]
            if retail > 0:
                check = apply_net_changes({wallet_id: state}, {wallet_id: -retail})
                if not check.ok:
                    self._reject(
                        p.index,
                        InsufficientBalance(
                            "Wallet does not have enough balance for this call.",
                            details={
                                "wallet_id": wallet_id,
                                "available_usd": format_usd(state.available_units),
                                "requested_usd": format_usd(retail),
                            },
                        ),
                    )
                    continue
                state.balance_units = check.new_balances[wallet_id]
            p.wallet_id = wallet_id
            p.balance_after_units = state.balance_units
            accepted.append(p)
        return accepted

    def _credit_accounts(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(scope, owner) → account id for the credit-only accounts, created if missing."""
        found: dict[tuple[str, str], str] = {}
        cache = self.account_ids
        if cache is not None:
            for key in keys:
                cached = cache.get(key)
                if cached is not None:
                    found[key] = cached
        missing = [key for key in keys if key not in found]
        if missing:
            stmt = select(accounts.c.id, accounts.c.owner_scope, accounts.c.owner_id).where(
                tuple_(accounts.c.owner_scope, accounts.c.owner_id).in_(missing)
            )
            existing: dict[tuple[str, str], str] = {}
            for row in self.conn.execute(stmt):
                existing[(row.owner_scope, row.owner_id)] = row.id
            found.update(existing)
            for scope, owner_id in missing:
                if (scope, owner_id) not in found:
                    found[(scope, owner_id)] = ledger.ensure_account(
                        self.conn, self.ctx.db.insert, OwnerScope(scope), owner_id, now=self.now
                    )
            if cache is not None:
                # Only ids of rows that already existed: an account created by this batch
                # is not committed yet and vanishes if the batch rolls back (then retries).
                for key, account_id in existing.items():
                    cache.remember(key, account_id)
        return found

    def _write(self, accepted: list[_Pending]) -> None:
        conn, now, db = self.conn, self.now, self.ctx.db
        for p in accepted:
            if p.end_user_id is None:  # a free call of a new end user: create the user and wallet
                p.end_user_id = SqlCatalog(conn, now).ensure_end_user(p.app.id, p.event.external_user_id)
            if p.wallet_id is None:
                p.wallet_id = ledger.ensure_account(conn, db.insert, OwnerScope.END_USER, p.end_user_id, now=now)
        if accepted:
            wanted = {
                (OwnerScope.PLATFORM.value, PLATFORM_OWNER_ID),
                (OwnerScope.PROVIDER_COST.value, PROVIDER_COST_OWNER_ID),
            }
            wanted.update((OwnerScope.DEVELOPER.value, p.app.developer_id) for p in accepted)
            ids = self._credit_accounts(sorted(wanted))
            platform = ids[(OwnerScope.PLATFORM.value, PLATFORM_OWNER_ID)]
            provider = ids[(OwnerScope.PROVIDER_COST.value, PROVIDER_COST_OWNER_ID)]
        for p in accepted:
            rated = p.rated
            if rated is None or p.wallet_id is None:
                raise LedgerInvariantViolation("writing an unrated event")
            p.transaction = usage_transaction(
                rated,
                p.event.route_mode,
                UsageAccounts(p.wallet_id, ids[(OwnerScope.DEVELOPER.value, p.app.developer_id)], platform, provider),
                request_id=p.event.request_id,
            )
            p.snapshot["end_user_wallet_id"] = p.wallet_id
            p.snapshot["end_user_balance_after_units"] = p.balance_after_units

        # Each account moves once, by the batch's net change. The end-user wallets were
        # locked (in id order) and decided in _decide: they move in one statement. The
        # credit-only accounts (platform, provider cost, developers) move last, one by
        # one in id order, so concurrent batches always take row locks in the same order.
        net: dict[str, int] = {}
        for p in accepted:
            if p.transaction is not None:
                for posting in p.transaction.postings:
                    net[posting.account_id] = net.get(posting.account_id, 0) + posting.amount_units
        end_user_wallets = {p.wallet_id for p in accepted}
        debits = {account_id: delta for account_id, delta in net.items() if account_id in end_user_wallets and delta}
        if any(delta > 0 for delta in debits.values()):
            raise LedgerInvariantViolation("a usage batch credits an end-user wallet")
        _move_locked_wallets(conn, db.is_postgres, debits, now)
        for account_id in sorted(net):
            delta = net[account_id]
            if delta and account_id not in end_user_wallets:
                _move(conn, account_id, delta, now)

        items = [(new_id(), p.transaction) for p in accepted if p.transaction is not None]
        ledger.insert_rows(conn, items, now=now)
        txn_ids = iter(items)
        rows = []
        for p in accepted:
            transaction_id = next(txn_ids)[0] if p.transaction is not None else None
            rated = p.rated
            if rated is None or p.end_user_id is None:
                raise LedgerInvariantViolation("writing an incomplete event")
            rows.append(
                {
                    "id": new_id(),
                    "request_id": p.event.request_id,
                    "request_hash": p.request_hash,
                    "app_id": p.app.id,
                    "public_app_id": p.event.public_app_id,
                    "end_user_id": p.end_user_id,
                    "feature_key": p.event.feature_key,
                    "route_mode": p.event.route_mode.value,
                    "provider": p.event.provider,
                    "model": p.event.model,
                    "input_tokens": p.event.input_tokens,
                    "output_tokens": p.event.output_tokens,
                    "cached_tokens": p.event.cached_tokens,
                    "upstream_cost_units": rated.upstream_cost_units,
                    "retail_price_units": rated.retail_price_units,
                    "channel_revenue_units": rated.channel_revenue_units,
                    "platform_revenue_units": rated.platform_revenue_units,
                    "gateway_fee_units": rated.gateway_fee_units,
                    "rating_snapshot": p.snapshot,
                    "transaction_id": transaction_id,
                    "created_at": now,
                }
            )
        insert_many(conn, usage_events, rows)
        by_index = {p.index: (row, p) for row, p in zip(rows, accepted, strict=True)}
        for index, (row, p) in by_index.items():
            self.outcomes[index] = UsageOutcome(
                p.event.request_id, "recorded", result=_result(row, p.wallet_id, p.balance_after_units)
            )
        for index, first in self.repeats:
            original = self.outcomes[first]
            if original is None:
                raise LedgerInvariantViolation("a repeated request id without its first outcome")
            if original.status == "recorded":
                self.outcomes[index] = UsageOutcome(original.request_id, "duplicate", result=original.result)
            else:
                self.outcomes[index] = UsageOutcome(
                    original.request_id, original.status, original.result, original.error
                )


def _pricing(app: Any, feature: Any) -> Pricing:
    markup = app.default_markup_bps
    share = app.default_revenue_share_bps
    fee = 0
    if feature is not None:
        if feature.markup_bps is not None:
            markup = feature.markup_bps
        if feature.channel_share_bps is not None:
            share = feature.channel_share_bps
        fee = feature.explicit_gateway_fee_units
    return Pricing(int(markup), int(share), int(fee))


_MOVE_LOCKED_PG = text(
    "UPDATE accounts AS a SET balance_units = a.balance_units + m.delta, updated_at = :now "
    "FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:deltas AS BIGINT[])) AS m(id, delta) "
    "WHERE a.id = m.id AND a.balance_units - a.reserved_units + m.delta >= 0"
).bindparams(bindparam("now", type_=DateTime(timezone=True)))
_MOVE_LOCKED_ONE = (
    update(accounts)
    .where(
        accounts.c.id == bindparam("move_id"),
        accounts.c.balance_units - accounts.c.reserved_units + bindparam("move_delta") >= 0,
    )
    .values(balance_units=accounts.c.balance_units + bindparam("move_delta"), updated_at=bindparam("move_now"))
)


def _move_locked_wallets(conn: Connection, is_postgres: bool, debits: dict[str, int], now: datetime) -> None:
    """Debit the batch's (locked, already decided) end-user wallets in one statement:
    ``UPDATE … FROM unnest(…)`` on PostgreSQL, one executemany on SQLite. The guard stays
    in the statement: a wallet that would go below its reservation is a bug, and fails loud."""
    if not debits:
        return
    ids = sorted(debits)
    if is_postgres:
        moved = conn.execute(_MOVE_LOCKED_PG, {"now": now, "ids": ids, "deltas": [debits[i] for i in ids]}).rowcount
    else:
        params = [{"move_id": i, "move_delta": debits[i], "move_now": now} for i in ids]
        moved = conn.execute(_MOVE_LOCKED_ONE, params).rowcount
    if moved != len(ids):
        raise LedgerInvariantViolation("an end-user wallet moved under the posting engine")


def _move(conn: Connection, account_id: str, delta: int, now: datetime) -> None:
    """Move a stored balance; a debit keeps a constrained wallet at or above its reservation
    (the wallet is locked and the decision already made, so a miss is a bug)."""
    balance = accounts.c.balance_units
    stmt = update(accounts).where(accounts.c.id == account_id)
    if delta < 0:
        stmt = stmt.where(balance - accounts.c.reserved_units + delta >= 0)
    if conn.execute(stmt.values(balance_units=balance + delta, updated_at=now)).rowcount != 1:
        raise LedgerInvariantViolation(f"balance of {account_id} moved under the posting engine")


def _result(row: dict[str, Any], wallet_id: str | None, balance_after_units: int) -> dict[str, Any]:
    return {
        "request_id": row["request_id"],
        "usage_event_id": row["id"],
        "transaction_id": row["transaction_id"],
        "route_mode": row["route_mode"],
        "upstream_cost_usd": format_usd(row["upstream_cost_units"]),
        "retail_price_usd": format_usd(row["retail_price_units"]),
        "channel_revenue_usd": format_usd(row["channel_revenue_units"]),
        "platform_revenue_usd": format_usd(row["platform_revenue_units"]),
        "gateway_fee_usd": format_usd(row["gateway_fee_units"]),
        "end_user_wallet_id": wallet_id,
        "end_user_balance_usd": format_usd(balance_after_units),
        "created_at": iso(row["created_at"]),
    }


def _stored_result(row: Any) -> dict[str, Any]:
    snapshot = row.rating_snapshot or {}
    mapping = dict(row._mapping)
    return _result(mapping, snapshot.get("end_user_wallet_id"), int(snapshot.get("end_user_balance_after_units", 0)))


def _conflict(request_id: str, current: dict[str, Any], original: dict[str, Any]) -> IdempotencyConflict:
    differing = sorted(name for name in current if current.get(name) != original.get(name))
    return IdempotencyConflict(
        "This request_id was already used for a different usage event.",
        details={"request_id": request_id, "fields": differing},
    )


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[i : i + _IN_CHUNK] for i in range(0, len(values), _IN_CHUNK)]
