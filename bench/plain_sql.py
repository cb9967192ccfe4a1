"""The plain-SQL baselines of the usage scenarios: the rows the posting engine writes for an
event, written through the same driver (psycopg 3 / sqlite3) with no SQLAlchemy, no
rating and no decisions.

Per event: the end user's, developer's, platform's and provider-cost balances move (the
end user's with the same ``balance - reserved + delta >= 0`` guard), one ledger
transaction, four postings and one usage row with its rating snapshot. ``write_batch``
does a whole list in one transaction, each account moved once by its net change and
the rows inserted with ``executemany``; one event per call is baseline (a).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from modelfaucet.adapters.db.engine import normalise_url

from .usage_data import INPUT_TOKENS, OUTPUT_TOKENS, UsageWorld, snapshot_json

_TXN = (
    "INSERT INTO ledger_transactions (id, reason, reference_type, reference_id, created_at) VALUES (%s, %s, %s, %s, %s)"
)
_POSTING = (
    "INSERT INTO ledger_postings (transaction_id, account_id, amount_units, reason, created_at) "
    "VALUES (%s, %s, %s, %s, %s)"
)
_USAGE = (
    "INSERT INTO usage_events (id, request_id, request_hash, app_id, public_app_id, end_user_id, feature_key, "
    "route_mode, provider, model, input_tokens, output_tokens, cached_tokens, upstream_cost_units, "
    "retail_price_units, channel_revenue_units, platform_revenue_units, gateway_fee_units, rating_snapshot, "
    "transaction_id, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
    "%s, %s, %s)"
)
_DEBIT = (
    "UPDATE accounts SET balance_units = balance_units + %s, updated_at = %s "
    "WHERE id = %s AND balance_units - reserved_units + %s >= 0"
)
_CREDIT = "UPDATE accounts SET balance_units = balance_units + %s, updated_at = %s WHERE id = %s"


class PlainWriter:
    def __init__(self, world: UsageWorld, tag: str, *, multirow: bool = False) -> None:
        self.multirow = multirow
        self.world = world
        self.tag = tag
        url = normalise_url(world.url)
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            path = make_url(url).database or ""
            self.conn: Any = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA busy_timeout=30000")
        else:
            parsed = make_url(url).set(drivername="postgresql")
            self.conn = psycopg.connect(parsed.render_as_string(hide_password=False))
        self.balances = dict.fromkeys(world.user_wallets, 0)

    def _sql(self, statement: str) -> str:
        return statement.replace("%s", "?") if self.sqlite else statement

    def close(self) -> None:
        self.conn.close()

    def write_batch(self, numbers: Sequence[int]) -> None:
        """Write the events ``numbers`` in one database transaction."""
        world, rated, now = self.world, self.world.rated, datetime.now(UTC)
        seeded = world.seeded
        retail = rated.retail_price_units
        txns: list[tuple[Any, ...]] = []
        postings: list[tuple[Any, ...]] = []
        usage: list[tuple[Any, ...]] = []
        user_net: dict[str, int] = {}
        for n in numbers:
            slot = n % len(world.user_wallets)
            wallet, user_id = world.user_wallets[slot], world.user_ids[slot]
            user_net[wallet] = user_net.get(wallet, 0) - retail
            txn_id = str(uuid.uuid4())
            request_id = f"{self.tag}-{n}"
            txns.append((txn_id, "usage_retail_price", "usage_event", request_id, now))
            postings.extend(
                [
                    (txn_id, wallet, -retail, "usage_retail_price", now),
                    (txn_id, seeded.provider_cost_wallet_id, rated.upstream_cost_units, "usage_provider_cost", now),
                    (txn_id, seeded.developer_wallet_id, rated.channel_revenue_units, "usage_channel_revenue", now),
                    (txn_id, seeded.platform_wallet_id, rated.platform_revenue_units, "usage_platform_revenue", now),
                ]
            )
            usage.append(
                (
                    str(uuid.uuid4()),
                    request_id,
                    "0" * 64,
                    seeded.app_id,
                    seeded.public_app_id,
                    user_id,
                    seeded.feature_key,
                    "platform",
                    "mock",
                    "mock-small",
                    INPUT_TOKENS,
                    OUTPUT_TOKENS,
                    0,
                    rated.upstream_cost_units,
                    retail,
                    rated.channel_revenue_units,
                    rated.platform_revenue_units,
                    0,
                    snapshot_json(world, n, 0),
                    txn_id,
                    now,
                )
            )
        count = len(numbers)
        credits = [
            (rated.upstream_cost_units * count, now, seeded.provider_cost_wallet_id),
            (rated.channel_revenue_units * count, now, seeded.developer_wallet_id),
            (rated.platform_revenue_units * count, now, seeded.platform_wallet_id),
        ]
        conn = self.conn
        if self.sqlite:
            conn.execute("BEGIN IMMEDIATE")
        cur = conn.cursor()
        try:
            for wallet in sorted(user_net):
                delta = user_net[wallet]
                cur.execute(self._sql(_DEBIT), (delta, now, wallet, delta))
                if cur.rowcount != 1:
                    raise RuntimeError("baseline wallet ran dry")
            cur.executemany(self._sql(_CREDIT), sorted(credits, key=lambda c: c[2]))
            if self.multirow:
                for statement, rows in ((_TXN, txns), (_POSTING, postings), (_USAGE, usage)):
                    _insert_multirow(cur, self._sql(statement), rows)
            else:
                cur.executemany(self._sql(_TXN), txns)
                cur.executemany(self._sql(_POSTING), postings)
                cur.executemany(self._sql(_USAGE), usage)
        finally:
            cur.close()
        if self.sqlite:
            conn.execute("COMMIT")
        else:
            conn.commit()


def _insert_multirow(cur: Any, statement: str, rows: list[tuple[Any, ...]]) -> None:
    """One ``INSERT … VALUES (…), (…), …`` per chunk of rows instead of one per row."""
    head, _, values = statement.partition(" VALUES ")
    per_row = len(rows[0]) if rows else 0
    chunk = max(1, 30_000 // max(1, per_row))
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        sql = head + " VALUES " + ", ".join([values] * len(part))
        cur.execute(sql, [value for row in part for value in row])


# --- the lower bound: binary COPY of the same rows + one guarded set-based balance update ---

# The end users' wallets of a batch: locked in id order (so two connections never deadlock)
# and moved by their summed change in ONE statement, with the same overdraft guard.
LOCK_AND_DEBIT = (
    "WITH m AS (SELECT * FROM unnest(%s::varchar[], %s::bigint[]) AS m(id, delta)), "
    "locked AS (SELECT a.id FROM accounts a JOIN m ON a.id = m.id ORDER BY a.id FOR NO KEY UPDATE OF a) "
    "UPDATE accounts a SET balance_units = a.balance_units + m.delta, updated_at = %s "
    "FROM m, locked WHERE a.id = m.id AND locked.id = a.id AND a.balance_units - a.reserved_units + m.delta >= 0"
)
_CREDIT_MANY = (
    "UPDATE accounts a SET balance_units = a.balance_units + m.delta, updated_at = %s "
    "FROM unnest(%s::varchar[], %s::bigint[]) AS m(id, delta) WHERE a.id = m.id"
)
_COPY_TXN = "COPY ledger_transactions (id, reason, reference_type, reference_id, created_at) FROM STDIN (FORMAT BINARY)"
_COPY_POSTING = (
    "COPY ledger_postings (transaction_id, account_id, amount_units, reason, created_at) FROM STDIN (FORMAT BINARY)"
)
_COPY_USAGE = (
    "COPY usage_events (id, request_id, request_hash, app_id, public_app_id, end_user_id, feature_key, "
    "route_mode, provider, model, input_tokens, output_tokens, cached_tokens, upstream_cost_units, "
    "retail_price_units, channel_revenue_units, platform_revenue_units, gateway_fee_units, rating_snapshot, "
    "transaction_id, created_at) FROM STDIN (FORMAT BINARY)"
)
_TXN_TYPES = ["text", "text", "text", "text", "timestamptz"]
_POSTING_TYPES = ["text", "text", "int8", "text", "timestamptz"]
# json's binary form is its text: the column's receive function takes the "text" bytes.
_USAGE_TYPES = ["text"] * 10 + ["int8"] * 8 + ["text", "text", "timestamptz"]


class CopyWriter:
    """PostgreSQL only: the same rows as :class:`PlainWriter`, the way a hand-written loader
    would write them — the end users' wallets in one guarded, id-ordered UPDATE, the three
    transaction tables by binary COPY, the hot platform / provider-cost / developer rows
    in one UPDATE last (held for the shortest time), then COMMIT. Nothing is rated or
    decided: a lower bound for what the engine has to write."""

    def __init__(self, world: UsageWorld, tag: str) -> None:
        parsed = make_url(normalise_url(world.url)).set(drivername="postgresql")
        self.conn: Any = psycopg.connect(parsed.render_as_string(hide_password=False))
        self.world = world
        self.tag = tag

    def close(self) -> None:
        self.conn.close()

    def write_batch(self, numbers: Sequence[int]) -> None:
        world, rated, now = self.world, self.world.rated, datetime.now(UTC)
        seeded = world.seeded
        retail = rated.retail_price_units
        txns: list[tuple[Any, ...]] = []
        postings: list[tuple[Any, ...]] = []
        usage: list[tuple[Any, ...]] = []
        user_net: dict[str, int] = {}
        for n in numbers:
            slot = n % len(world.user_wallets)
            wallet, user_id = world.user_wallets[slot], world.user_ids[slot]
            user_net[wallet] = user_net.get(wallet, 0) - retail
            txn_id = str(uuid.uuid4())
            request_id = f"{self.tag}-{n}"
            txns.append((txn_id, "usage_retail_price", "usage_event", request_id, now))
            postings.append((txn_id, wallet, -retail, "usage_retail_price", now))
            postings.append(
                (txn_id, seeded.provider_cost_wallet_id, rated.upstream_cost_units, "usage_provider_cost", now)
            )
            postings.append(
                (txn_id, seeded.developer_wallet_id, rated.channel_revenue_units, "usage_channel_revenue", now)
            )
            postings.append(
                (txn_id, seeded.platform_wallet_id, rated.platform_revenue_units, "usage_platform_revenue", now)
            )
            usage.append(
                (
                    str(uuid.uuid4()), request_id, "0" * 64, seeded.app_id, seeded.public_app_id, user_id,
                    seeded.feature_key, "platform", "mock", "mock-small", INPUT_TOKENS, OUTPUT_TOKENS, 0,
                    rated.upstream_cost_units, retail, rated.channel_revenue_units, rated.platform_revenue_units,
                    0, snapshot_json(world, n, 0), txn_id, now,
                )
            )  # fmt: skip
        count = len(numbers)
        hot = sorted(
            [
                (seeded.provider_cost_wallet_id, rated.upstream_cost_units * count),
                (seeded.developer_wallet_id, rated.channel_revenue_units * count),
                (seeded.platform_wallet_id, rated.platform_revenue_units * count),
            ]
        )
        wallets = sorted(user_net)
        with self.conn.cursor() as cur:
            cur.execute(LOCK_AND_DEBIT, (wallets, [user_net[w] for w in wallets], now))
            if cur.rowcount != len(wallets):
                raise RuntimeError("baseline wallet ran dry")
            for statement, types, rows in (
                (_COPY_TXN, _TXN_TYPES, txns),
                (_COPY_POSTING, _POSTING_TYPES, postings),
                (_COPY_USAGE, _USAGE_TYPES, usage),
            ):
                with cur.copy(statement) as copy:
                    copy.set_types(types)
                    for row in rows:
                        copy.write_row(row)
            cur.execute(_CREDIT_MANY, (now, [h[0] for h in hot], [h[1] for h in hot]))
        self.conn.commit()
