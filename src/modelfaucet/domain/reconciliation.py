"""Reconciliation runs: who ran one, and the one-line summary a run leaves behind."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

SUMMARY_MAX = 500


class RunSource(StrEnum):
    """Who ran a reconciliation: the admin API, ``modelfaucet reconcile``, the service's own
    periodic run (``RECONCILE_EVERY_SECONDS``), or code calling the service directly."""

    API = "api"
    CLI = "cli"
    PERIODIC = "periodic"
    OTHER = "other"


def run_summary(wallet_mismatches: int, failing_checks: Iterable[str], *, stripe_flagged: bool) -> str:
    """``ok``, or what was wrong in one line (at most :data:`SUMMARY_MAX` characters):
    ``2 wallets out of balance; failing: transactions_balanced; stripe sync flagged``."""
    parts: list[str] = []
    if wallet_mismatches:
        parts.append(f"{wallet_mismatches} wallet{'s' if wallet_mismatches != 1 else ''} out of balance")
    failing = sorted(failing_checks)
    if failing:
        parts.append("failing: " + ", ".join(failing))
    if stripe_flagged:
        parts.append("stripe sync flagged")
    summary = "; ".join(parts) or "ok"
    return summary if len(summary) <= SUMMARY_MAX else summary[: SUMMARY_MAX - 1] + "…"
