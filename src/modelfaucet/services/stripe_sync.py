"""sync_stripe: compare Stripe's Checkout sessions with the top-ups and the ledger (SPEC §20).

Webhooks get lost. A sync asks Stripe what it holds and makes the books agree, without
ever crediting twice. Load, decide, write:

1. The window: ``since`` as given, else far enough back to reach every pending top-up
   (and at least :data:`DEFAULT_WINDOW`).
2. Load, outside any transaction (Stripe may take seconds): every Checkout session Stripe
   lists for the window (all pages); then, in one read, the local top-ups created in it and
   the top-ups of listed sessions that are older. A local top-up Stripe did not list is
   asked for by id, so every top-up is judged on Stripe's word.
3. Decide each session's outcome: :func:`modelfaucet.domain.stripe_sync.classify`.
4. Unless it is a dry run, write. Each ``credited_now`` / ``expired_now`` session in its own
   short unit of work: its top-up is locked, classified again on what is stored *now* (a
   late webhook may have credited it meanwhile: then it is ``ok``), and settled through
   :func:`~modelfaucet.services.settle_topup.settle_topup` — the webhook's own exactly-once
   path. A paid top-up's PaymentIntent is recorded when it is missing (refunds and disputes
   name it). Last, the run — window, counts, flagged rows — with its audit entry, which the
   reconciliation report's ``stripe`` section reads (:func:`last_sync_flags`).

A dry run loads and decides only: it writes nothing. The result is a :class:`SyncReport`;
``http/`` and ``cli/`` render it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ..adapters.stripe.providers import sessions_for
from ..adapters.stripe.sessions import CheckoutSessions, StripeSession
from ..domain.audit import AuditEntry
from ..domain.identity import new_id
from ..domain.money import cents_to_units, format_usd
from ..domain.outcomes import InvalidRequest, LedgerInvariantViolation
from ..domain.stripe_sync import FLAGGED, LocalView, StripeView, SyncDecision, SyncOutcome, classify
from ..domain.timestamps import as_utc, iso
from ..domain.topups import TopupStatus
from .context import Actor, ServiceContext
from .repositories import SyncRow, SyncRunRecord, TopupRecord
from .settle_topup import Cause, settle_topup
from .unit_of_work import UnitOfWork

# How far back a sync looks when not told (it also always reaches the oldest pending top-up).
DEFAULT_WINDOW: Final = timedelta(days=7)
SYNC_REFERENCE_TYPE: Final = "stripe_sync"

# Where Stripe's sessions are read: by default the library with a secret key, else the
# offline provider's record.
SessionsFactory = Callable[[ServiceContext], CheckoutSessions]


@dataclass(frozen=True, slots=True)
class SyncStripe:
    """The command: the window's start (None: the default) and whether to write."""

    since: datetime | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class SyncReport:
    """One row per session in the window, in the order Stripe and the top-ups were read."""

    dry_run: bool
    since: datetime
    rows: tuple[SyncRow, ...]
    run_id: str | None = None  # the stored run; None for a dry run

    @property
    def summary(self) -> dict[SyncOutcome, int]:
        """Every outcome with its count (zeros included, so the shape never changes)."""
        counts = dict.fromkeys(SyncOutcome, 0)
        for row in self.rows:
            counts[row.outcome] += 1
        return counts

    @property
    def flagged(self) -> tuple[SyncRow, ...]:
        return tuple(row for row in self.rows if is_flagged(row))

    @property
    def ok(self) -> bool:
        return not self.flagged


@dataclass(frozen=True, slots=True)
class StripeSyncSection:
    """The reconciliation report's ``stripe`` section: the last stored sync's flagged rows."""

    last_sync_at: datetime | None
    run_id: str | None
    since: datetime | None
    summary: Mapping[str, int] = field(default_factory=dict)
    flagged: tuple[SyncRow, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.flagged

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "description": "The last Stripe sync found every Checkout session in agreement with its top-up.",
            "last_sync_at": None if self.last_sync_at is None else iso(self.last_sync_at),
            "since": None if self.since is None else iso(self.since),
            "summary": dict(self.summary),
            "flagged_count": len(self.flagged),
            "flagged": [as_item(row) for row in self.flagged],
        }


def is_flagged(row: SyncRow) -> bool:
    return row.outcome in FLAGGED


def as_item(row: SyncRow) -> dict[str, Any]:
    """A row as the API, the CLI's ``--json`` and the reconciliation report show it."""
    return {
        "checkout_session_id": row.checkout_session_id,
        "topup_id": row.topup_id,
        "outcome": str(row.outcome),
        "stripe_status": row.stripe_status,
        "local_status": None if row.local_status is None else str(row.local_status),
        "amount_usd": format_usd(row.amount_units),
    }


def parse_since(text: str) -> datetime:
    """An ISO-8601 instant (``2026-11-01T00:00:00Z``); one without an offset is UTC."""
    try:
        return as_utc(datetime.fromisoformat(text.strip())).astimezone(UTC)
    except (ValueError, OverflowError):  # not ISO-8601, or an offset that leaves the calendar
        raise InvalidRequest(
            "since must be an ISO-8601 date-time such as 2026-11-01T00:00:00Z.", details={"field": "since"}
        ) from None


def sync_stripe(
    ctx: ServiceContext,
    command: SyncStripe,
    *,
    actor: Actor,
    sessions_factory: SessionsFactory = sessions_for,
) -> SyncReport:
    started = ctx.clock()
    since = command.since if command.since is not None else _default_since(ctx, started)
    compared = _compare(ctx, sessions_factory(ctx), since, now=started)
    if command.dry_run:
        return SyncReport(dry_run=True, since=since, rows=tuple(row.as_row() for row in compared))

    run_id = new_id()
    cause = Cause(
        id=f"stripe_sync:{run_id}",
        actor=actor.name,
        note="stripe sync",
        details={"sync_run_id": run_id},
        request_id=actor.request_id,
    )
    rows = tuple(_settle(ctx, row, cause) if row.writes else row.as_row() for row in compared)
    report = SyncReport(dry_run=False, since=since, rows=rows, run_id=run_id)
    _record_run(ctx, report, actor=actor)
    return report


def classify_row(topup: TopupRecord | None, session: StripeSession | None, *, now: datetime) -> SyncDecision:
    return classify(_local_view(topup), _stripe_view(session), now=now)


def last_sync_flags(uow: UnitOfWork) -> StripeSyncSection:
    """The last stored sync's flagged rows (none, and ``last_sync_at`` None, before any sync)."""
    run = uow.stripe_events.last_sync_run()
    if run is None:
        return StripeSyncSection(last_sync_at=None, run_id=None, since=None)
    return StripeSyncSection(
        last_sync_at=as_utc(run.created_at),
        run_id=run.id,
        since=as_utc(run.since),
        summary=dict(run.summary),
        flagged=run.flagged,
    )


# --- load ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Compared:
    """One session: what Stripe holds, the local top-up, and (once decided) the outcome."""

    session_id: str
    session: StripeSession | None
    topup: TopupRecord | None
    decision: SyncDecision

    @property
    def writes(self) -> bool:
        """A credit or an expiry to apply, or a paid top-up's PaymentIntent to record."""
        if self.topup is None:
            return False
        if self.decision.payment is not None:
            return True
        return (
            self.decision.outcome is SyncOutcome.OK
            and self.topup.status is TopupStatus.CREDITED
            and self.topup.payment_intent_id is None
            and self.session is not None
            and self.session.payment_intent_id is not None
        )

    def as_row(self) -> SyncRow:
        return _row(self.session_id, self.topup, self.session, self.decision)


def _compare(ctx: ServiceContext, stripe: CheckoutSessions, since: datetime, *, now: datetime) -> list[_Compared]:
    """Load Stripe's sessions of the window (all pages), the top-ups of the window and of
    those sessions — a top-up Stripe did not list is asked for by id — and decide each.
    Stripe is read outside any transaction: it may take seconds."""
    listed = {session.id: session for session in stripe.list_sessions(created_since=since)}
    with ctx.reader() as uow:
        topups = {topup.checkout_session_id: topup for topup in uow.topups.created_since(since)}
        for session_id in listed:
            if session_id not in topups and (older := uow.topups.by_session(session_id)) is not None:
                topups[session_id] = older
    unlisted = [session_id for session_id in topups if session_id not in listed]
    sessions: dict[str, StripeSession | None] = {
        **listed,
        **{session_id: stripe.retrieve_session(session_id) for session_id in unlisted},
    }
    return [
        _Compared(sid, sessions[sid], topups.get(sid), classify_row(topups.get(sid), sessions[sid], now=now))
        for sid in sessions
    ]


def _default_since(ctx: ServiceContext, now: datetime) -> datetime:
    with ctx.reader() as uow:
        oldest = uow.topups.oldest_pending_created_at()
    since = now - DEFAULT_WINDOW
    return since if oldest is None else min(since, as_utc(oldest))


def _local_view(topup: TopupRecord | None) -> LocalView | None:
    if topup is None:
        return None
    return LocalView(topup.status, topup.amount_cents, topup.currency, as_utc(topup.created_at))


def _stripe_view(session: StripeSession | None) -> StripeView | None:
    if session is None:
        return None
    return StripeView(session.status, session.payment_status, session.amount_total, session.currency)


def _row(session_id: str, topup: TopupRecord | None, session: StripeSession | None, decision: SyncDecision) -> SyncRow:
    if topup is not None:
        amount_units = topup.amount_units
    else:
        amount_units = cents_to_units(session.amount_total or 0) if session is not None else 0
    view = _stripe_view(session)
    return SyncRow(
        checkout_session_id=session_id,
        topup_id=None if topup is None else topup.id,
        outcome=decision.outcome,
        stripe_status=None if view is None else view.label,
        local_status=None if topup is None else topup.status,
        amount_units=amount_units,
    )


# --- write -------------------------------------------------------------------------------


def _settle(ctx: ServiceContext, row: _Compared, cause: Cause) -> SyncRow:
    """Apply one session's outcome on its locked top-up, decided again on what is stored now."""
    with ctx.unit_of_work() as uow:
        topup = uow.topups.by_session(row.session_id, for_update=True)
        if topup is None:
            raise LedgerInvariantViolation(f"the top-up of {row.session_id} vanished during a sync")
        current = replace(row, topup=topup, decision=classify_row(topup, row.session, now=uow.now))
        intent = None if row.session is None else row.session.payment_intent_id
        if current.decision.payment is not None:
            settle_topup(uow, topup, current.decision.payment, cause, payment_intent_id=intent)
        elif current.writes and intent is not None:
            uow.topups.record_payment_intent(topup.id, intent)
        after = replace(current, topup=uow.topups.by_session(row.session_id))
        uow.commit()
    return after.as_row()


def _record_run(ctx: ServiceContext, report: SyncReport, *, actor: Actor) -> None:
    if report.run_id is None:  # pragma: no cover - only stored runs come here
        return
    summary = {str(outcome): count for outcome, count in report.summary.items()}
    with ctx.unit_of_work() as uow:
        uow.stripe_events.add_sync_run(
            SyncRunRecord(
                id=report.run_id,
                actor=actor.name,
                since=report.since,
                summary=summary,
                flagged=report.flagged,
                created_at=uow.now,
            )
        )
        uow.audit.add(
            AuditEntry(
                actor=actor.name,
                action="stripe.sync",
                resource_type=SYNC_REFERENCE_TYPE,
                resource_id=report.run_id,
                note=f"since {iso(report.since)}",
                request_id=actor.request_id,
                details={"summary": summary, "flagged_count": len(report.flagged)},
            )
        )
        uow.commit()
