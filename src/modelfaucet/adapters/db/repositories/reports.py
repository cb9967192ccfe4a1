"""Read-only queries behind reports, reconciliation and listings.

Everything here reads; nothing locks. Reconciliation runs these in one snapshot unit of
work (``ctx.reader(snapshot=True)``), so its several queries see one moment of the books.
The CSV report rows come from a server-side cursor (``stream_results`` / ``yield_per``):
they leave the database a page at a time and memory stays flat whatever the row count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, and_, case, func, or_, select, true

from ....domain.holds import HoldStatus
from ....domain.ledger import OwnerScope, Reason
from ....domain.payouts import PayoutStatus
from ....domain.topups import TopupStatus
from ....services.repositories import (
    AccountBalance,
    AuditChainLink,
    AuditQuery,
    AuditRecord,
    CreditedTopup,
    DailyUsage,
    ListedWallet,
    PaidPayoutMismatch,
    PayoutReportRow,
    ReservationMismatch,
    RevenueReportRow,
    UnbalancedTransaction,
    UnbalancedTransactions,
    UsagePostingMismatch,
    UsageReportRow,
    WalletOwner,
    WalletQuery,
)
from .. import csv_sql
from ..audit import GENESIS_HASH, row_hash, unchained_before
from ..bulk import driver_connection
from ..ledger import account_state
from ..tables import (
    accounts,
    apps,
    audit_log,
    developers,
    end_users,
    holds,
    ledger_postings,
    ledger_transactions,
    payouts,
    stripe_topups,
    usage_events,
)
from .payouts import OPEN, payout_record

# Rows fetched from the server-side cursor per round trip.
YIELD_PER = 2000
USAGE_REASONS = (
    Reason.USAGE_RETAIL_PRICE,
    Reason.USAGE_PROVIDER_COST,
    Reason.USAGE_CHANNEL_REVENUE,
    Reason.USAGE_PLATFORM_REVENUE,
    Reason.USAGE_UNCOLLECTED,
)
# stripe_topups.status of a top-up whose wallet was credited.


class SqlReports:
    """Implements :class:`modelfaucet.services.repositories.ReportRepository`."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.now = now

    def _streaming(self) -> Connection:
        return self.connection.execution_options(stream_results=True, yield_per=YIELD_PER)

    # -- reconciliation ------------------------------------------------------------------

    def account_balances(self) -> list[AccountBalance]:
        # Two plain queries merged here rather than one join: the aggregate is exactly the
        # bare ``SUM() GROUP BY`` an operator would write, and merging 10k accounts in
        # Python costs less than joining them in SQL. The caller's snapshot keeps the two
        # queries consistent.
        rebuilt: dict[str, int] = {
            account_id: int(total)
            for account_id, total in self.connection.execute(
                select(ledger_postings.c.account_id, func.sum(ledger_postings.c.amount_units)).group_by(
                    ledger_postings.c.account_id
                )
            )
        }
        rows = self.connection.execute(
            select(
                accounts.c.id,
                accounts.c.owner_scope,
                accounts.c.owner_id,
                accounts.c.balance_units,
                accounts.c.reserved_units,
            )
        )
        return [
            AccountBalance(account_id, owner_scope, owner_id, int(balance), rebuilt.get(account_id, 0), int(reserved))
            for account_id, owner_scope, owner_id, balance, reserved in rows
        ]

    def unbalanced_transactions(self, *, limit: int) -> UnbalancedTransactions:
        # One streaming pass over the covering (transaction_id, amount_units) index counts
        # the transactions that have postings and the ones that break the rule; the slower
        # queries that *name* offenders run only when the counts say something is wrong.
        per_txn = (
            select(
                ledger_postings.c.transaction_id,
                func.sum(ledger_postings.c.amount_units).label("total"),
                func.count().label("postings"),
            )
            .group_by(ledger_postings.c.transaction_id)
            .subquery()
        )
        bad_rule = (per_txn.c.total != 0) | (per_txn.c.postings < 2)
        counted = self.connection.execute(
            select(func.count(), func.coalesce(func.sum(case((bad_rule, 1), else_=0)), 0)).select_from(per_txn)
        ).one()
        with_postings, bad_count = int(counted[0]), int(counted[1])
        transaction_count = int(
            self.connection.execute(select(func.count()).select_from(ledger_transactions)).scalar_one()
        )
        orphan_count = transaction_count - with_postings
        listed: list[UnbalancedTransaction] = []
        if bad_count:
            rows = self.connection.execute(
                select(per_txn.c.transaction_id, per_txn.c.total, per_txn.c.postings).where(bad_rule).limit(limit)
            )
            listed += [UnbalancedTransaction(r.transaction_id, int(r.total), int(r.postings)) for r in rows]
        if orphan_count:
            has_postings = select(ledger_postings.c.id).where(
                ledger_postings.c.transaction_id == ledger_transactions.c.id
            )
            rows = self.connection.execute(select(ledger_transactions.c.id).where(~has_postings.exists()).limit(limit))
            listed += [UnbalancedTransaction(r.id, 0, 0) for r in rows]
        return UnbalancedTransactions(count=bad_count + orphan_count, listed=listed)

    def reservation_mismatches(self) -> list[ReservationMismatch]:
        open_sums = (
            select(payouts.c.account_id, func.sum(payouts.c.amount_units).label("open_units"))
            .where(payouts.c.status.in_(OPEN))
            .group_by(payouts.c.account_id)
            .subquery()
        )
        held_sums = (
            select(holds.c.account_id, func.sum(holds.c.amount_units).label("held_units"))
            .where(holds.c.status == HoldStatus.HELD.value)
            .group_by(holds.c.account_id)
            .subquery()
        )
        open_units = func.coalesce(open_sums.c.open_units, 0)
        held_units = func.coalesce(held_sums.c.held_units, 0)
        rows = self.connection.execute(
            select(accounts.c.id, accounts.c.reserved_units, open_units.label("open"), held_units.label("held"))
            .select_from(
                accounts.outerjoin(open_sums, open_sums.c.account_id == accounts.c.id).outerjoin(
                    held_sums, held_sums.c.account_id == accounts.c.id
                )
            )
            .where(accounts.c.reserved_units != open_units + held_units)
        )
        return [ReservationMismatch(row.id, int(row.reserved_units), int(row.open), int(row.held)) for row in rows]

    def paid_payout_mismatches(self) -> list[PaidPayoutMismatch]:
        debits = (
            select(
                ledger_postings.c.transaction_id,
                func.sum(ledger_postings.c.amount_units).label("debited"),
            )
            .where(
                and_(
                    ledger_postings.c.amount_units < 0,
                    ledger_postings.c.reason == Reason.MOCK_PAYOUT_PAID.value,
                )
            )
            .group_by(ledger_postings.c.transaction_id)
            .subquery()
        )
        rows = self.connection.execute(
            select(payouts.c.id, payouts.c.amount_units, debits.c.debited)
            .select_from(payouts.outerjoin(debits, debits.c.transaction_id == payouts.c.transaction_id))
            .where(payouts.c.status == str(PayoutStatus.PAID))
            .where((debits.c.debited.is_(None)) | (debits.c.debited != -payouts.c.amount_units))
        )
        return [
            PaidPayoutMismatch(row.id, int(row.amount_units), None if row.debited is None else -int(row.debited))
            for row in rows
        ]

    def usage_posting_mismatches(self, *, limit: int) -> list[UsagePostingMismatch]:
        u = usage_events.c
        # A captured hold's shortfall is part of the price, debited to uncollected_usage.
        retail = _role_sum(Reason.USAGE_RETAIL_PRICE, Reason.USAGE_UNCOLLECTED).label("retail")
        upstream = _role_sum(Reason.USAGE_PROVIDER_COST).label("upstream")
        channel = _role_sum(Reason.USAGE_CHANNEL_REVENUE).label("channel")
        platform = _role_sum(Reason.USAGE_PLATFORM_REVENUE).label("platform")
        not_usage = ledger_postings.c.reason.not_in([reason.value for reason in USAGE_REASONS])
        others = func.coalesce(func.sum(case((not_usage, 1), else_=0)), 0).label("others")
        per_event = (
            select(
                u.request_id,
                u.transaction_id,
                u.retail_price_units,
                u.upstream_cost_units,
                u.channel_revenue_units,
                u.platform_revenue_units,
                retail,
                upstream,
                channel,
                platform,
                others,
            )
            .select_from(usage_events.outerjoin(ledger_postings, ledger_postings.c.transaction_id == u.transaction_id))
            .group_by(
                u.id,
                u.request_id,
                u.transaction_id,
                u.retail_price_units,
                u.upstream_cost_units,
                u.channel_revenue_units,
                u.platform_revenue_units,
            )
            .having(
                or_(
                    retail != -u.retail_price_units,
                    upstream != u.upstream_cost_units,
                    channel != u.channel_revenue_units,
                    platform != u.platform_revenue_units,
                    others != 0,
                    (u.transaction_id.is_(None)) & (u.retail_price_units != 0),
                    (u.transaction_id.is_not(None)) & (u.retail_price_units == 0),
                )
            )
            .order_by(u.request_id)
            .limit(limit)
        )
        return [
            UsagePostingMismatch(
                request_id=row.request_id,
                transaction_id=row.transaction_id,
                retail_price_units=int(row.retail_price_units),
                posted_retail_units=-int(row.retail),
                upstream_cost_units=int(row.upstream_cost_units),
                posted_upstream_units=int(row.upstream),
                channel_revenue_units=int(row.channel_revenue_units),
                posted_channel_units=int(row.channel),
                platform_revenue_units=int(row.platform_revenue_units),
                posted_platform_units=int(row.platform),
            )
            for row in self.connection.execute(per_event)
        ]

    def topup_postings(self) -> dict[str, list[tuple[str, int]]]:
        postings: dict[str, list[tuple[str, int]]] = {}
        for row in self.connection.execute(
            select(ledger_postings.c.transaction_id, ledger_postings.c.account_id, ledger_postings.c.amount_units)
            .join(ledger_transactions, ledger_transactions.c.id == ledger_postings.c.transaction_id)
            .where(ledger_transactions.c.reason == Reason.STRIPE_CHECKOUT_TOPUP.value)
        ):
            postings.setdefault(row.transaction_id, []).append((row.account_id, int(row.amount_units)))
        return postings

    def credited_topups(self) -> list[CreditedTopup]:
        rows = self.connection.execute(
            select(
                stripe_topups.c.id,
                stripe_topups.c.account_id,
                stripe_topups.c.amount_units,
                stripe_topups.c.transaction_id,
            )
            .where(stripe_topups.c.status == TopupStatus.CREDITED.value)
            .order_by(stripe_topups.c.id)
        )
        return [CreditedTopup(row.id, row.account_id, int(row.amount_units), row.transaction_id) for row in rows]

    # -- listings ------------------------------------------------------------------------

    def wallets(self, query: WalletQuery) -> list[ListedWallet]:
        # An end user's wallet → its end user → app → developer; a developer's wallet → the
        # developer. Two aliases, so each join is an equality the indexes serve.
        app_developer = developers.alias("app_developer")
        wallet_developer = developers.alias("wallet_developer")
        joined = (
            accounts.outerjoin(
                end_users,
                and_(accounts.c.owner_scope == OwnerScope.END_USER.value, end_users.c.id == accounts.c.owner_id),
            )
            .outerjoin(apps, apps.c.id == end_users.c.app_id)
            .outerjoin(app_developer, app_developer.c.id == apps.c.developer_id)
            .outerjoin(
                wallet_developer,
                and_(
                    accounts.c.owner_scope == OwnerScope.DEVELOPER.value,
                    wallet_developer.c.id == accounts.c.owner_id,
                ),
            )
        )
        developer_id = func.coalesce(wallet_developer.c.id, app_developer.c.id)
        developer_email = func.coalesce(wallet_developer.c.email, app_developer.c.email)
        conditions: list[ColumnElement[bool]] = []
        if query.owner_scope is not None:
            conditions.append(accounts.c.owner_scope == str(query.owner_scope))
        if query.owner_id is not None:
            conditions.append(accounts.c.owner_id == query.owner_id)
        if query.app_id is not None:
            conditions.append(end_users.c.app_id == query.app_id)
        if query.external_user_hash is not None:
            conditions.append(end_users.c.external_user_hash == query.external_user_hash)
        if query.developer_email is not None:
            conditions.append(developer_email == query.developer_email)
        stmt = (
            select(
                accounts,
                apps.c.public_app_id,
                developer_id.label("developer_id"),
                developer_email.label("developer_email"),
            )
            .select_from(joined)
            .where(and_(true(), *conditions))
            .order_by(accounts.c.owner_scope, accounts.c.owner_id)
            .limit(query.limit)
        )
        return [
            ListedWallet(account_state(row), WalletOwner(row.public_app_id, row.developer_id, row.developer_email))
            for row in self.connection.execute(stmt)
        ]

    def audit_entries(self, query: AuditQuery) -> list[AuditRecord]:
        c = audit_log.c
        conditions: list[ColumnElement[bool]] = []
        if query.actor is not None:
            conditions.append(c.actor == query.actor)
        if query.action is not None:
            conditions.append(c.action == query.action)
        if query.resource_type is not None:
            conditions.append(c.resource_type == query.resource_type)
        if query.resource_id is not None:
            conditions.append(c.resource_id == query.resource_id)
        if query.start is not None:
            conditions.append(c.created_at >= query.start)
        if query.end is not None:
            conditions.append(c.created_at < query.end)
        if query.before_id is not None:
            conditions.append(c.id < query.before_id)
        stmt = select(audit_log).order_by(c.id.desc()).limit(query.limit + 1)
        if conditions:
            stmt = stmt.where(and_(*conditions))
        return [_audit_record(row) for row in self.connection.execute(stmt)]

    def audit_history(self, resource_type: str, resource_id: str) -> list[AuditRecord]:
        rows = self.connection.execute(
            select(audit_log)
            .where(audit_log.c.resource_type == resource_type, audit_log.c.resource_id == resource_id)
            .order_by(audit_log.c.id)
        )
        return [_audit_record(row) for row in rows]

    def audit_chain(self, *, after_position: int, limit: int) -> list[AuditChainLink]:
        seq = audit_log.c.chain_seq
        rows = self.connection.execute(select(audit_log).where(seq > after_position).order_by(seq).limit(limit))
        return [
            AuditChainLink(
                id=int(row.id),
                position=int(row.chain_seq),
                prev_hash=row.prev_hash,
                row_hash=row.row_hash,
                content_hash=row_hash(dict(row._mapping), row.prev_hash),
            )
            for row in rows
        ]

    def audit_genesis_hash(self) -> str:
        return GENESIS_HASH

    def audit_unchained(self, written_before: datetime) -> tuple[int, int | None]:
        return unchained_before(self.connection, written_before)

    # -- CSV reports ---------------------------------------------------------------------

    def usage_report_pages(self, start: datetime | None, end: datetime | None) -> Iterator[Sequence[UsageReportRow]]:
        u = usage_events.c
        stmt = select(
            u.created_at,
            u.request_id,
            u.public_app_id,
            u.feature_key,
            u.route_mode,
            u.provider,
            u.model,
            u.input_tokens,
            u.output_tokens,
            u.upstream_cost_units,
            u.retail_price_units,
            u.channel_revenue_units,
            u.platform_revenue_units,
        )
        window = _window(u.created_at, start, end)
        if window:
            stmt = stmt.where(and_(*window))
        result = self._streaming().execute(stmt.order_by(u.created_at, u.request_id))
        # Whole pages of the server-side cursor: the caller's per-row loop stays tight.
        for page in result.partitions():
            yield cast(Sequence[UsageReportRow], page)

    def usage_report_count(self, start: datetime | None, end: datetime | None) -> int:
        stmt = select(func.count()).select_from(usage_events)
        window = _window(usage_events.c.created_at, start, end)
        if window:
            stmt = stmt.where(and_(*window))
        return int(self.connection.execute(stmt).scalar_one())

    def revenue_report_rows(self, start: datetime | None, end: datetime | None) -> Iterator[RevenueReportRow]:
        u = usage_events.c
        totals = select(
            u.app_id,
            func.count().label("calls"),
            func.sum(u.upstream_cost_units).label("upstream"),
            func.sum(u.retail_price_units).label("retail"),
            func.sum(u.channel_revenue_units).label("channel"),
            func.sum(u.platform_revenue_units).label("platform"),
        ).group_by(u.app_id)
        window = _window(u.created_at, start, end)
        if window:
            totals = totals.where(and_(*window))
        sums = totals.subquery()
        stmt = (
            select(
                apps.c.public_app_id,
                apps.c.developer_id,
                developers.c.email,
                func.coalesce(sums.c.calls, 0).label("calls"),
                func.coalesce(sums.c.upstream, 0).label("upstream"),
                func.coalesce(sums.c.retail, 0).label("retail"),
                func.coalesce(sums.c.channel, 0).label("channel"),
                func.coalesce(sums.c.platform, 0).label("platform"),
            )
            .select_from(
                apps.join(developers, developers.c.id == apps.c.developer_id).outerjoin(
                    sums, sums.c.app_id == apps.c.id
                )
            )
            .order_by(apps.c.public_app_id)
        )
        for row in self._streaming().execute(stmt):
            yield RevenueReportRow(
                public_app_id=row.public_app_id,
                developer_id=row.developer_id,
                developer_email=row.email,
                calls=int(row.calls),
                upstream_cost_units=int(row.upstream),
                retail_price_units=int(row.retail),
                channel_revenue_units=int(row.channel),
                platform_revenue_units=int(row.platform),
            )

    def usage_per_day(self, start: datetime, end: datetime) -> list[DailyUsage]:
        u = usage_events.c
        # The UTC day. SQLite keeps UTC times as text 'YYYY-MM-DD HH:MM:SS…'.
        if self.connection.dialect.name == "postgresql":
            day: ColumnElement[Any] = func.to_char(func.timezone("UTC", u.created_at), "YYYY-MM-DD")
        else:
            day = func.substr(u.created_at, 1, 10)
        stmt = (
            select(
                day.label("day"),
                func.count().label("calls"),
                func.sum(u.retail_price_units).label("retail"),
                func.sum(u.platform_revenue_units).label("platform"),
                func.sum(u.upstream_cost_units).label("upstream"),
            )
            .where(and_(*_window(u.created_at, start, end)))
            .group_by(day)
            .order_by(day)
        )
        return [
            DailyUsage(str(row.day), int(row.calls), int(row.retail), int(row.platform), int(row.upstream))
            for row in self.connection.execute(stmt)
        ]

    def app_count(self) -> int:
        return int(self.connection.execute(select(func.count()).select_from(apps)).scalar_one())

    def payout_report_rows(self, start: datetime | None, end: datetime | None) -> Iterator[PayoutReportRow]:
        stmt = select(payouts, developers.c.email.label("developer_email")).select_from(
            payouts.join(developers, developers.c.id == payouts.c.developer_id)
        )
        window = _window(payouts.c.created_at, start, end)
        if window:
            stmt = stmt.where(and_(*window))
        for row in self._streaming().execute(stmt.order_by(payouts.c.created_at, payouts.c.id)):
            yield PayoutReportRow(payout=payout_record(row), developer_email=row.developer_email)

    def report_csv_lines(self, name: str, start: datetime | None, end: datetime | None) -> Iterator[bytes] | None:
        build = _CSV_SQL.get(name)
        if build is None or self.connection.dialect.name != "postgresql":
            return None
        where, params = _window_sql(start, end)
        return self._copy_lines(f"COPY ({build(where)}) TO STDOUT (FORMAT binary)", params)

    def _copy_lines(self, statement: str, params: list[datetime]) -> Iterator[bytes]:
        # The unit of work's own connection and transaction: same snapshot, same lifetime.
        raw = driver_connection(self.connection)
        with raw.cursor() as cursor:
            cursor.execute(csv_sql.SESSION_SETTINGS)
            with cursor.copy(statement, params) as copy:
                yield from csv_sql.copy_lines(copy)

    def payout_report_count(self, start: datetime | None, end: datetime | None) -> int:
        stmt = select(func.count()).select_from(payouts)
        window = _window(payouts.c.created_at, start, end)
        if window:
            stmt = stmt.where(and_(*window))
        return int(self.connection.execute(stmt).scalar_one())


# -- CSV reports formatted by PostgreSQL (see ..csv_sql) ----------------------------------

_USAGE_TEXTS = ("request_id", "public_app_id", "feature_key", "route_mode", "provider", "model")


@cache
def _usage_line() -> str:
    return csv_sql.fast_or_slow_line(
        [
            csv_sql.iso_cell("created_at"),
            *_USAGE_TEXTS,
            "input_tokens",
            "output_tokens",
            *(
                csv_sql.usd_cell(column)
                for column in (
                    "upstream_cost_units",
                    "retail_price_units",
                    "channel_revenue_units",
                    "platform_revenue_units",
                )
            ),
        ],
        _USAGE_TEXTS,
    )


_REVENUE_TEXTS = ("a.public_app_id", "a.developer_id", "d.email")


@cache
def _revenue_line() -> str:
    return csv_sql.fast_or_slow_line(
        [
            *_REVENUE_TEXTS,
            "COALESCE(s.calls, 0)",
            *(csv_sql.usd_cell(f"COALESCE(s.{column}, 0)") for column in ("upstream", "retail", "channel", "platform")),
        ],
        _REVENUE_TEXTS,
    )


_PAYOUTS_TEXTS = ("p.id", "p.developer_id", "d.email", "p.status", "p.provider", "p.provider_payout_id")


@cache
def _payouts_line() -> str:
    return csv_sql.line(
        [
            csv_sql.iso_cell("p.created_at"),
            csv_sql.iso_cell("p.updated_at"),
            *(csv_sql.text_cell(column) for column in _PAYOUTS_TEXTS[:3]),
            csv_sql.usd_cell("p.amount_units"),
            *(csv_sql.text_cell(column) for column in _PAYOUTS_TEXTS[3:]),
        ]
    )


def _usage_sql(where: str) -> str:
    return f"SELECT {_usage_line()} FROM usage_events WHERE {where} ORDER BY created_at, request_id"


def _revenue_sql(where: str) -> str:
    return (
        f"SELECT {_revenue_line()} FROM apps a JOIN developers d ON d.id = a.developer_id "
        "LEFT JOIN (SELECT app_id, count(*) AS calls, sum(upstream_cost_units) AS upstream, "
        "sum(retail_price_units) AS retail, sum(channel_revenue_units) AS channel, "
        f"sum(platform_revenue_units) AS platform FROM usage_events WHERE {where} GROUP BY app_id) s "
        "ON s.app_id = a.id ORDER BY a.public_app_id"
    )


def _payouts_sql(where: str) -> str:
    return (
        f"SELECT {_payouts_line()} FROM payouts p JOIN developers d ON d.id = p.developer_id "
        f"WHERE {where.replace('created_at', 'p.created_at')} ORDER BY p.created_at, p.id"
    )


_CSV_SQL: dict[str, Callable[[str], str]] = {"usage": _usage_sql, "revenue": _revenue_sql, "payouts": _payouts_sql}


def _window_sql(start: datetime | None, end: datetime | None) -> tuple[str, list[datetime]]:
    """The half-open window on ``created_at`` as SQL text with %s placeholders."""
    conditions, params = ["TRUE"], []
    if start is not None:
        conditions.append("created_at >= %s")
        params.append(start)
    if end is not None:
        conditions.append("created_at < %s")
        params.append(end)
    return " AND ".join(conditions), params


def _window(column: Any, start: datetime | None, end: datetime | None) -> list[ColumnElement[bool]]:
    """The half-open time window [start, end) on ``column``."""
    conditions: list[ColumnElement[bool]] = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return conditions


def _role_sum(*reasons: Reason) -> ColumnElement[Any]:
    """The sum of a usage transaction's postings of one role (its reasons)."""
    of_role = ledger_postings.c.reason.in_([reason.value for reason in reasons])
    return func.coalesce(func.sum(case((of_role, ledger_postings.c.amount_units), else_=0)), 0)


def _audit_record(row: Any) -> AuditRecord:
    return AuditRecord(
        id=int(row.id),
        created_at=row.created_at,
        actor=row.actor,
        action=row.action,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        before_status=row.before_status,
        after_status=row.after_status,
        amount_units=None if row.amount_units is None else int(row.amount_units),
        note=row.note,
        request_id=row.request_id,
        details=row.details or {},
    )
