"""B8: one developer's month — statement and earnings — among millions of other postings,
each beside the bare indexed query that reads the same rows, measured in the same run.

Data: a developer wallet with ``per_month`` usage credits in each of three months (a usage
event and a two-posting transaction each), drowned in two-posting transfers between
thousands of other wallets over the same months until the ledger holds ``postings``
postings, plus usage events of other apps. Loaded with each engine's bulk path (COPY on
PostgreSQL), stored balances consistent with the postings. The clock stands at the start
of the fourth month: the developer reads last month, as at a month's end.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import accounts, apps, developers, end_users
from modelfaucet.config import Settings
from modelfaucet.domain.earnings import EarningsGrouping
from modelfaucet.services import developer_access, statements
from modelfaucet.services.context import ServiceContext

from .common import Figure, best_of, fresh_database

MONTHS = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC))
NOW = datetime(2025, 4, 1, tzinfo=UTC)
MONTH = (MONTHS[2], NOW)  # the month read: the last one
CHANNEL_UNITS = 12_600
REASON = "usage_channel_revenue"
OTHER_REASON = "bench_synthetic_transfer"

BASELINE_STATEMENT = (
    "SELECT p.id, p.transaction_id, p.amount_units, p.reason, p.created_at, t.reference_type, t.reference_id "
    "FROM ledger_postings p JOIN ledger_transactions t ON t.id = p.transaction_id "
    "WHERE p.account_id = :wallet AND p.created_at >= :start AND p.created_at < :end "
    "ORDER BY p.created_at, p.id"
)
DAY = {"postgresql": "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')", "sqlite": "substr(created_at, 1, 10)"}
BASELINE_EARNINGS = (
    "SELECT {day} AS day, count(*), sum(input_tokens), sum(output_tokens), sum(retail_price_units), "
    "sum(channel_revenue_units) FROM usage_events "
    "WHERE app_id = :app AND created_at >= :start AND created_at < :end GROUP BY day ORDER BY day"
)


def _moment(rng: random.Random) -> datetime:
    return MONTHS[0] + timedelta(seconds=rng.randrange(int((NOW - MONTHS[0]).total_seconds())))


def _usage_row(event_id: str, app: tuple[str, str], user_id: str, txn: str | None, at: datetime) -> tuple[Any, ...]:
    app_id, public_app_id = app
    return (
        event_id, f"b8-{event_id}", "0" * 64, app_id, public_app_id, user_id, "reply", "platform", "mock",
        "mock-small", 1200, 300, 0, 105_000, 136_500, CHANNEL_UNITS, 18_900, 0, "{}", txn, at,
    )  # fmt: skip


USAGE_COLUMNS = (
    "id, request_id, request_hash, app_id, public_app_id, end_user_id, feature_key, route_mode, provider, model, "
    "input_tokens, output_tokens, cached_tokens, upstream_cost_units, retail_price_units, channel_revenue_units, "
    "platform_revenue_units, gateway_fee_units, rating_snapshot, transaction_id, created_at"
)


def load(
    db: Database, *, postings: int, per_month: int, wallets: int, other_events: int, seed: int = 8
) -> dict[str, str]:
    """Write the data; return the developer's ids."""
    rng = random.Random(seed)
    opened = MONTHS[0] - timedelta(days=1)
    ids = {name: str(uuid.uuid4()) for name in ("developer", "app", "user", "wallet", "clearing", "other_dev")}
    other_apps = [(str(uuid.uuid4()), f"other-{n}") for n in range(20)]
    with db.transaction() as conn:
        conn.execute(
            insert(developers),
            [
                {"id": ids["developer"], "name": "Bench", "email": "bench@example.com", "created_at": opened},
                {"id": ids["other_dev"], "name": "Others", "email": "others@example.com", "created_at": opened},
            ],
        )
        conn.execute(
            insert(apps),
            [
                {"id": app_id, "public_app_id": public, "developer_id": owner, "name": public,
                 "default_revenue_share_bps": 4000, "created_at": opened}
                for app_id, public, owner in [(ids["app"], "bench-app", ids["developer"])]
                + [(a, p, ids["other_dev"]) for a, p in other_apps]
            ],
        )  # fmt: skip
        conn.execute(
            insert(end_users),
            [{"id": ids["user"], "app_id": ids["app"], "external_user_hash": "0" * 64, "created_at": opened}],
        )

    txn_rows: list[tuple[str, str, str | None, str | None, datetime]] = []
    posting_rows: list[tuple[str, str, int, str, datetime]] = []
    usage_rows: list[tuple[Any, ...]] = []
    balances: dict[str, int] = {}
    for month in MONTHS:
        days = ((month.replace(day=28) + timedelta(days=4)).replace(day=1) - month).days
        for _ in range(per_month):
            at = month + timedelta(seconds=rng.randrange(days * 86_400))
            txn, event = str(uuid.uuid4()), str(uuid.uuid4())
            txn_rows.append((txn, "usage_retail_price", "usage_event", f"b8-{event}", at))
            posting_rows.append((txn, ids["wallet"], CHANNEL_UNITS, REASON, at))
            posting_rows.append((txn, ids["clearing"], -CHANNEL_UNITS, REASON, at))
            usage_rows.append(_usage_row(event, (ids["app"], "bench-app"), ids["user"], txn, at))
    balances[ids["wallet"]] = CHANNEL_UNITS * per_month * len(MONTHS)
    others = [str(uuid.uuid4()) for _ in range(wallets)]
    for _ in range((postings - len(posting_rows)) // 2):
        txn, wallet, amount, at = (
            str(uuid.uuid4()),
            others[rng.randrange(wallets)],
            rng.randrange(1, 10**8),
            _moment(rng),
        )
        txn_rows.append((txn, OTHER_REASON, None, None, at))
        posting_rows.append((txn, wallet, amount, OTHER_REASON, at))
        posting_rows.append((txn, ids["clearing"], -amount, OTHER_REASON, at))
        balances[wallet] = balances.get(wallet, 0) + amount
    for _ in range(other_events):
        app_id, public = other_apps[rng.randrange(len(other_apps))]
        usage_rows.append(_usage_row(str(uuid.uuid4()), (app_id, public), ids["user"], None, _moment(rng)))
    balances[ids["clearing"]] = -sum(balances.values())

    account_rows = [
        {"id": account, "owner_scope": "end_user", "owner_id": f"owner-{n}", "balance_units": balance,
         "reserved_units": 0, "created_at": opened, "updated_at": opened}
        for n, (account, balance) in enumerate(balances.items())
    ]  # fmt: skip
    account_rows[0].update(owner_scope="developer", owner_id=ids["developer"])
    account_rows[-1].update(owner_scope="system", owner_id="stripe_clearing")
    with db.transaction() as conn:
        conn.execute(insert(accounts), account_rows)
        _bulk(conn, db, "ledger_transactions (id, reason, reference_type, reference_id, created_at)", txn_rows)
        _bulk(conn, db, "ledger_postings (transaction_id, account_id, amount_units, reason, created_at)", posting_rows)
        _bulk(conn, db, f"usage_events ({USAGE_COLUMNS})", usage_rows)
    # A live database has been vacuumed and analysed; a freshly bulk-loaded one has not.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if db.is_postgres else "ANALYZE"))
    return ids


def _bulk(conn: Any, db: Database, target: str, rows: Sequence[tuple[Any, ...]]) -> None:
    raw = conn.connection.driver_connection
    if db.is_postgres:
        with raw.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    width = target.count(",") + 1
    raw.executemany(
        f"INSERT INTO {target} VALUES ({', '.join('?' * width)})",
        (tuple(v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v for v in row) for row in rows),
    )


def _drain(chunks: Iterator[bytes]) -> int:
    return sum(len(chunk) for chunk in chunks)


def run(engine_name: str, *, quick: bool) -> list[Figure]:
    postings, per_month, wallets, other_events = (
        (100_000, 1_000, 2_000, 10_000) if quick else (2_000_000, 10_000, 10_000, 200_000)
    )
    runs = 3 if quick else 7
    with fresh_database(engine_name, "b8") as url:
        db = Database.from_url(url)
        ids = load(db, postings=postings, per_month=per_month, wallets=wallets, other_events=other_events)
        ctx = replace(ServiceContext(db=db, settings=Settings(database_url=url)), clock=lambda: NOW)
        window = {"start": MONTH[0], "end": MONTH[1]}

        def baseline_statement() -> object:
            # Through a server-side cursor, like the statement: PostgreSQL then plans for the
            # first rows (index probes), the fastest honest way to read these rows here.
            with db.read(snapshot=True) as conn:
                streaming = conn.execution_options(stream_results=True, yield_per=2000)
                return streaming.execute(text(BASELINE_STATEMENT), {"wallet": ids["wallet"], **window}).all()

        def baseline_earnings() -> object:
            with db.read() as conn:
                return conn.execute(
                    text(BASELINE_EARNINGS.format(day=DAY[db.dialect])), {"app": ids["app"], **window}
                ).all()

        def statement() -> object:
            of = statements.statement_of(ctx, ids["wallet"], **window)
            with statements.open_statement(ctx, of) as read:
                return sum(1 for _ in read.entries)

        def statement_csv() -> object:
            of = statements.statement_of(ctx, ids["wallet"], **window)
            with statements.open_statement(ctx, of) as read:
                return _drain(statements.statement_csv(read))

        def earnings() -> object:
            return developer_access.developer_earnings(ctx, ids["developer"], grouping=EarningsGrouping.DAY, **window)

        entries = statement()
        if entries != per_month:
            raise RuntimeError(f"B8: the statement has {entries} entries, expected {per_month}")
        totals = developer_access.developer_earnings(ctx, ids["developer"], **window).totals
        if totals.channel_revenue_units != per_month * CHANNEL_UNITS:
            raise RuntimeError(
                f"B8: earnings total {totals.channel_revenue_units}, expected {per_month * CHANNEL_UNITS}"
            )
        for warm in (baseline_statement, baseline_earnings, statement_csv, earnings):
            warm()  # warm caches for every contender alike
        figures = {
            "statement": (best_of(runs, statement), best_of(runs, baseline_statement)),
            "statement.csv": (best_of(runs, statement_csv), best_of(runs, baseline_statement)),
            "earnings": (best_of(runs, earnings), best_of(runs, baseline_earnings)),
        }
        db.dispose()
    gated = not quick and engine_name == "postgresql"
    data = f"{postings:,} postings; one wallet's month: {per_month:,} entries / usage events"
    labels = {
        "statement": ("statement, one wallet's month (ms)", "bare indexed SELECT of the month's postings", True),
        "statement.csv": ("  the same as statement.csv (ms)", "bare indexed SELECT of the month's postings", False),
        "earnings": ("earnings by day, one month (ms)", "bare indexed GROUP BY day of the app's events", True),
    }
    out = []
    for key, (value_s, base_s) in figures.items():
        metric, baseline_label, targeted = labels[key]
        out.append(
            Figure(
                "B8",
                engine_name,
                metric,
                value_s * 1000,
                "ms",
                baseline=base_s * 1000,
                baseline_label=baseline_label,
                target="≤ 200 ms and ≤ 1.5× baseline" if targeted else "",
                met=(value_s <= 0.2 and value_s <= 1.5 * base_s) if gated and targeted else None,
                notes={"data": data},
            )
        )
    return out
