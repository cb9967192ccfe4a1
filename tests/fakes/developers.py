"""In-memory developer access and statements: the same protocols and rules as
``SqlDeveloperAccess`` / ``SqlStatements``.

Developer reads are scoped by the developer's id as the SQL filters them (another
developer's row is None); statements read the in-memory ledger's postings by creation
time, half-open windows, ties broken by posting id.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from modelfaucet.domain.catalog import CatalogStatus
from modelfaucet.domain.earnings import EarningsGrouping, EarningsLine, total_of
from modelfaucet.domain.ledger import Transaction
from modelfaucet.domain.payouts import OPEN_STATUSES, PayoutStatus
from modelfaucet.services.repositories import (
    AppRecord,
    DeveloperPayout,
    DeveloperTokenRecord,
    FeatureRecord,
    PayoutStatusChange,
    StatementLine,
)
from tests.fakes.catalog import CatalogState

# (posting id, transaction id, account id, signed amount, reason, created at): MemoryState.postings
PostingRow = tuple[int, str, str, int, str, datetime]


@dataclass(frozen=True, slots=True)
class UsageRow:
    """A rated usage event, as far as earnings read it."""

    app_id: str
    public_app_id: str
    feature_key: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    retail_units: int
    channel_revenue_units: int
    created_at: datetime


@dataclass
class DeveloperAccessState:
    tokens: dict[str, DeveloperTokenRecord] = field(default_factory=dict)  # by token hash
    payouts: dict[str, DeveloperPayout] = field(default_factory=dict)
    payout_history: dict[str, list[PayoutStatusChange]] = field(default_factory=dict)
    usage: list[UsageRow] = field(default_factory=list)


class MemoryDeveloperAccess:
    """Implements :class:`modelfaucet.services.repositories.DeveloperAccessRepository` in memory."""

    def __init__(self, state: DeveloperAccessState, catalog: CatalogState, now: datetime) -> None:
        self.state = state
        self.catalog = catalog
        self.now = now

    def add_token(self, token: DeveloperTokenRecord, *, token_hash: str) -> bool:
        if token_hash in self.state.tokens:
            return False
        self.state.tokens[token_hash] = replace(token, created_at=self.now, last_used_at=None, revoked_at=None)
        return True

    def tokens(self, developer_id: str) -> list[DeveloperTokenRecord]:
        mine = [t for t in self.state.tokens.values() if t.developer_id == developer_id]
        return sorted(mine, key=lambda t: (t.created_at, t.id))

    def get_token(self, developer_id: str, token_id: str) -> DeveloperTokenRecord | None:
        return next((t for t in self.tokens(developer_id) if t.id == token_id), None)

    def live_token(self, token_hash: str) -> DeveloperTokenRecord | None:
        found = self.state.tokens.get(token_hash)
        if found is None or found.revoked_at is not None or not self.developer_is_active(found.developer_id):
            return None
        return found

    def developer_is_active(self, developer_id: str) -> bool:
        developer = next((d for d in self.catalog.developers.values() if d.id == developer_id), None)
        return developer is not None and developer.status == CatalogStatus.ACTIVE

    def _replace_token(self, token_id: str, **changes: object) -> None:
        for digest, token in self.state.tokens.items():
            if token.id == token_id:
                self.state.tokens[digest] = replace(token, **changes)  # type: ignore[arg-type]

    def revoke_token(self, token_id: str) -> bool:
        if not any(t.id == token_id and t.revoked_at is None for t in self.state.tokens.values()):
            return False
        self._replace_token(token_id, revoked_at=self.now)
        return True

    def mark_token_used(self, token_id: str, *, unless_used_since: datetime) -> None:
        token = next(t for t in self.state.tokens.values() if t.id == token_id)
        if token.last_used_at is None or token.last_used_at < unless_used_since:
            self._replace_token(token_id, last_used_at=self.now)

    def apps(self, developer_id: str) -> list[AppRecord]:
        mine = [app for app in self.catalog.apps.values() if app.developer_id == developer_id]
        return sorted(mine, key=lambda app: app.public_app_id)

    def features(self, app_ids: Collection[str]) -> list[FeatureRecord]:
        found = [f for f in self.catalog.features.values() if f.app_id in app_ids]
        return sorted(found, key=lambda f: (f.app_id, f.feature_key))

    def payouts(self, developer_id: str, *, status: PayoutStatus | None, limit: int) -> list[DeveloperPayout]:
        mine = [
            p
            for p in self.state.payouts.values()
            if p.developer_id == developer_id and (status is None or p.status is status)
        ]
        mine.sort(key=lambda p: p.id)
        mine.sort(key=lambda p: p.created_at, reverse=True)
        return mine[:limit]

    def payout(self, developer_id: str, payout_id: str) -> DeveloperPayout | None:
        found = self.state.payouts.get(payout_id)
        return found if found is not None and found.developer_id == developer_id else None

    def payout_history(self, payout_id: str) -> list[PayoutStatusChange]:
        return list(self.state.payout_history.get(payout_id, []))

    def open_payout_units(self, developer_id: str) -> int:
        return sum(
            p.amount_units
            for p in self.state.payouts.values()
            if p.developer_id == developer_id and p.status in OPEN_STATUSES
        )

    def earnings(
        self, app_ids: Collection[str], *, start: datetime, end: datetime, grouping: EarningsGrouping
    ) -> list[EarningsLine]:
        groups: dict[str, list[EarningsLine]] = {}
        for row in self.state.usage:
            if row.app_id in app_ids and start <= row.created_at < end:
                key = {
                    EarningsGrouping.DAY: row.created_at.astimezone(UTC).date().isoformat(),
                    EarningsGrouping.APP: row.public_app_id,
                    EarningsGrouping.FEATURE: row.feature_key,
                    EarningsGrouping.MODEL: f"{row.provider}/{row.model}",
                }[grouping]
                line = EarningsLine(
                    key, 1, row.input_tokens, row.output_tokens, row.retail_units, row.channel_revenue_units
                )
                groups.setdefault(key, []).append(line)
        return [replace(total_of(lines), key=key) for key, lines in sorted(groups.items())]


class MemoryStatements:
    """Implements :class:`modelfaucet.services.repositories.StatementRepository` over the
    in-memory ledger's postings."""

    def __init__(self, postings: list[PostingRow], transactions: dict[str, Transaction], now: datetime) -> None:
        self.postings = postings
        self.transactions = transactions
        self.now = now

    def _of(self, account_id: str, start: datetime | None, end: datetime | None) -> list[PostingRow]:
        return [
            p
            for p in self.postings
            if p[2] == account_id and (start is None or p[5] >= start) and (end is None or p[5] < end)
        ]

    def balance_before(self, account_id: str, instant: datetime) -> int:
        return sum(p[3] for p in self._of(account_id, None, instant))

    def totals_by_reason(
        self, account_id: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> dict[str, int]:
        totals: dict[str, int] = {}
        for p in self._of(account_id, start, end):
            totals[p[4]] = totals.get(p[4], 0) + p[3]
        return totals

    def lines(self, account_id: str, *, start: datetime, end: datetime) -> Iterator[StatementLine]:
        for posting_id, transaction_id, _, amount, reason, created_at in sorted(
            self._of(account_id, start, end), key=lambda p: (p[5], p[0])
        ):
            txn = self.transactions[transaction_id]
            yield StatementLine(
                posting_id, transaction_id, amount, reason, created_at, txn.reference_type, txn.reference_id
            )
