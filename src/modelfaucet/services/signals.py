"""Operational signals: what the services tell the outside world once something committed.

Services never import a metrics library. They report through this port, and only for what
a committed unit of work made true (``uow.after_commit(...)``): a rolled-back request
reports nothing. The HTTP app hands the Prometheus implementation
(:class:`modelfaucet.http.metrics.Metrics`) to the :class:`~.context.ServiceContext`; the CLI
and the tests that do not watch get :class:`NoSignals`.

Every label a signal carries is drawn from a small closed set (an outcome, a route mode, a
posting reason, a Stripe event type this service handles): never a user, app or request id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..domain.ledger import Transaction


@dataclass(frozen=True, slots=True)
class Moved:
    """Postings of one reason in one committed unit of work: how many, and the money they
    moved (the sum of their positive amounts; every transaction balances, so the negative
    side of the books moved the same)."""

    postings: int
    units: int


def tally_moved(moved: Mapping[str, Moved], transactions: Sequence[Transaction]) -> dict[str, Moved]:
    """``moved`` plus the postings of ``transactions``, by posting reason (the ledgers keep
    this per unit of work; the unit of work reports it after its commit)."""
    counts: dict[str, list[int]] = {}  # reason -> [postings, units]: one Moved per reason, not per posting
    for transaction in transactions:
        for posting in transaction.postings:
            count = counts.get(posting.reason)
            if count is None:
                count = counts[posting.reason] = [0, 0]
            count[0] += 1
            if posting.amount_units > 0:
                count[1] += posting.amount_units
    tally = dict(moved)
    for reason, (postings, units) in counts.items():
        before = tally.get(reason)
        tally[reason] = (
            Moved(postings, units) if before is None else Moved(before.postings + postings, before.units + units)
        )
    return tally


class Signals(Protocol):
    def usage_batch(self, outcomes: Sequence[tuple[str, str]], *, seconds: float) -> None:
        """A usage batch committed: one ``(outcome, route_mode)`` per event, and how long the
        batch took from its first read to its commit."""
        ...

    def money_moved(self, by_reason: Mapping[str, Moved]) -> None:
        """A unit of work that posted to the ledger committed."""
        ...

    def stripe_webhook(self, event_type: str, outcome: str) -> None:
        """A Stripe webhook was answered (``processed``, ``ignored``, ``duplicate``) or
        refused (``signature_failed``)."""
        ...

    def reconciled(self, mismatches: int, *, at: datetime) -> None:
        """A reconciliation run finished, finding ``mismatches`` problems (0: the books agree)."""
        ...

    def holds_expired(self, count: int) -> None:
        """A unit of work that expired ``count`` holds (lazily, on a wallet it locked, or by
        the sweep) committed."""
        ...


class NoSignals:
    """Nobody is watching (the CLI, most tests)."""

    def usage_batch(self, outcomes: Sequence[tuple[str, str]], *, seconds: float) -> None:
        pass

    def money_moved(self, by_reason: Mapping[str, Moved]) -> None:
        pass

    def stripe_webhook(self, event_type: str, outcome: str) -> None:
        pass

    def reconciled(self, mismatches: int, *, at: datetime) -> None:
        pass

    def holds_expired(self, count: int) -> None:
        pass
