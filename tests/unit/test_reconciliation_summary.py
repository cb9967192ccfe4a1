"""The one-line summary a reconciliation run stores (domain, pure)."""

from __future__ import annotations

from modelfaucet.domain.reconciliation import SUMMARY_MAX, run_summary


def test_a_clean_run_says_ok() -> None:
    assert run_summary(0, [], stripe_flagged=False) == "ok"


def test_a_broken_run_names_the_wallets_the_failing_checks_and_the_stripe_flag() -> None:
    summary = run_summary(2, ["transactions_balanced", "audit_rows"], stripe_flagged=True)
    assert summary == "2 wallets out of balance; failing: audit_rows, transactions_balanced; stripe sync flagged"
    assert run_summary(1, [], stripe_flagged=False) == "1 wallet out of balance"


def test_the_summary_fits_its_column() -> None:
    summary = run_summary(3, [f"check_{n:03d}" for n in range(200)], stripe_flagged=False)
    assert len(summary) == SUMMARY_MAX and summary.endswith("…")
