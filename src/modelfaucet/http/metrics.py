"""Prometheus metrics: every definition in one place, one registry per app instance
(nothing global, nothing at import).

:class:`Metrics` implements the services' :class:`~modelfaucet.services.signals.Signals`
port, so the money counters move only for what a unit of work committed. Gauges about
stored state (payouts by status, the oldest open payout's age, open holds, the newest
reconciliation run of any process) are refreshed on each scrape by one read transaction
of small indexed reads (:func:`~modelfaucet.services.gauges.read_gauges`). Every label
value comes from a closed set — an enum of the domain, an HTTP method and status, a route
template — never a user, app or request id; anything else is counted as ``other``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.routing import Match
from starlette.types import Scope

from ..domain.ledger import Reason
from ..domain.payouts import PayoutStatus
from ..domain.rating import RouteMode
from ..services.gauges import StoredGauges
from ..services.payout_queries import PayoutGauges
from ..services.signals import Moved
from ..services.stripe_webhook import HANDLERS, UNKNOWN_EVENT_TYPE
from ..services.usage_decisions import UsageStatus

OTHER = "other"
UNMATCHED = "unmatched"
_REASONS = frozenset(str(reason) for reason in Reason)
_USAGE_OUTCOMES = frozenset(str(status) for status in UsageStatus)
_ROUTE_MODES = frozenset(str(mode) for mode in RouteMode)
_WEBHOOK_OUTCOMES = frozenset({"processed", "ignored", "duplicate", "signature_failed"})
# A client may send any token as its method (``BREW /health`` answers 405): only these
# become a label value of their own.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _bounded(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else OTHER


def route_label(scope: Scope) -> str:
    """The route template a request matched (``/v1/wallets/{wallet_id}``), for every route,
    including the ones FastAPI adds itself (``/openapi.json``, ``/docs``), which do not
    leave themselves in the scope; ``unmatched`` for a 404."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    app = scope.get("app")
    for candidate in getattr(app, "routes", ()):
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", UNMATCHED))
    return UNMATCHED


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        # With several API worker processes each keeps its own counters: the scrape says whose.
        self.worker = Gauge(
            "modelfaucet_worker_process_id",
            "Process id of the API worker process that rendered these metrics.",
            registry=registry,
        )
        self.worker.set(os.getpid())
        self.requests = Counter(
            "modelfaucet_http_requests_total",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "modelfaucet_http_request_seconds",
            "HTTP request latency by route template.",
            ["route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.usage_events = Counter(
            "modelfaucet_usage_events_total",
            "Usage events decided in a committed batch, by outcome and route mode.",
            ["outcome", "route_mode"],
            registry=registry,
        )
        self.posting_batch_size = Histogram(
            "modelfaucet_usage_posting_batch_size",
            "Usage events per committed posting batch.",
            registry=registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 500),
        )
        self.posting_seconds = Histogram(
            "modelfaucet_usage_posting_seconds",
            "Time from a usage batch's first read to its commit.",
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.ledger_postings = Counter(
            "modelfaucet_ledger_postings_total",
            "Ledger postings committed, by posting reason.",
            ["reason"],
            registry=registry,
        )
        self.moved_units = Counter(
            "modelfaucet_money_moved_units_total",
            "Money moved by committed postings (sum of their credits), in 1e-8 USD units, by reason.",
            ["reason"],
            registry=registry,
        )
        self.stripe_webhooks = Counter(
            "modelfaucet_stripe_webhooks_total",
            "Stripe webhooks answered or refused, by handled event type (else other) and outcome.",
            ["type", "outcome"],
            registry=registry,
        )
        self.payouts = Gauge(
            "modelfaucet_payouts", "Payouts by status (read at scrape).", ["status"], registry=registry
        )
        self.payout_oldest_open = Gauge(
            "modelfaucet_payout_oldest_open_seconds",
            "Age of the oldest open (pending or processing) payout; 0 when none is open.",
            registry=registry,
        )
        self.reconciliation_mismatches = Gauge(
            "modelfaucet_reconciliation_mismatches",
            "Problems the newest reconciliation run (API, CLI or periodic, any process) found: "
            "wallets out of balance, failing checks, a flagged Stripe sync.",
            registry=registry,
        )
        self.reconciliation_last_run = Gauge(
            "modelfaucet_reconciliation_last_run_timestamp_seconds",
            "When the newest reconciliation run (API, CLI or periodic, any process) finished (Unix time; 0: never).",
            registry=registry,
        )
        self.holds_open = Gauge(
            "modelfaucet_holds_open", "Holds held right now, on every wallet (read at scrape).", registry=registry
        )
        self.holds_expired_counter = Counter(
            "modelfaucet_holds_expired_total",
            "Holds expired by a committed unit of work (lazily on a locked wallet, or by the sweep).",
            registry=registry,
        )
        self._event_types = frozenset((*HANDLERS, UNKNOWN_EVENT_TYPE))
        # Every bounded series exists from the start, so rate() and alerts see a zero.
        for outcome in _USAGE_OUTCOMES:
            for mode in _ROUTE_MODES:
                self.usage_events.labels(outcome, mode)
        for reason in _REASONS:
            self.ledger_postings.labels(reason)
            self.moved_units.labels(reason)
        for event_type in self._event_types:
            for webhook_outcome in _WEBHOOK_OUTCOMES:
                self.stripe_webhooks.labels(event_type, webhook_outcome)

    # -- HTTP (the edge middleware) ------------------------------------------------------

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(_bounded(method, _METHODS), route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    # -- the Signals port (called after a commit) ----------------------------------------

    def usage_batch(self, outcomes: Sequence[tuple[str, str]], *, seconds: float) -> None:
        for outcome, mode in outcomes:
            self.usage_events.labels(_bounded(outcome, _USAGE_OUTCOMES), _bounded(mode, _ROUTE_MODES)).inc()
        self.posting_batch_size.observe(len(outcomes))
        self.posting_seconds.observe(seconds)

    def money_moved(self, by_reason: Mapping[str, Moved]) -> None:
        for reason, moved in by_reason.items():
            label = _bounded(reason, _REASONS)
            self.ledger_postings.labels(label).inc(moved.postings)
            self.moved_units.labels(label).inc(moved.units)

    def stripe_webhook(self, event_type: str, outcome: str) -> None:
        labels = _bounded(event_type, self._event_types), _bounded(outcome, _WEBHOOK_OUTCOMES)
        self.stripe_webhooks.labels(*labels).inc()

    def reconciled(self, mismatches: int, *, at: datetime) -> None:
        self.reconciliation_mismatches.set(mismatches)
        self.reconciliation_last_run.set(at.timestamp())

    def holds_expired(self, count: int) -> None:
        self.holds_expired_counter.inc(count)

    # -- the scrape ----------------------------------------------------------------------

    def refresh(self, stored: StoredGauges, *, now: datetime) -> None:
        """Set the gauges of stored state from what the scrape read."""
        self.refresh_payouts(stored.payouts, now=now)
        self.holds_open.set(stored.holds_open)
        run = stored.last_reconciliation
        if run is not None:
            self.reconciled(run.mismatches, at=run.finished_at)

    def refresh_payouts(self, gauges: PayoutGauges, *, now: datetime) -> None:
        for status in PayoutStatus:
            self.payouts.labels(str(status)).set(gauges.by_status.get(status, 0))
        oldest = gauges.oldest_open_created_at
        self.payout_oldest_open.set(0 if oldest is None else max((now - oldest).total_seconds(), 0.0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
