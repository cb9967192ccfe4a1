"""The top-up state machine: every (status, payment) pair and its outcome, as one table."""

from __future__ import annotations

import itertools

import pytest

from modelfaucet.domain.topups import TRANSITIONS, Payment, TopupOutcome, TopupStatus, decide, refusal_message

S, P, OUT = TopupStatus, Payment, TopupOutcome

# (status, what the event says of the payment) -> (status after, outcome, credits the wallet)
# or None when refused. All 3 x 3 pairs, nothing implied.
EXPECTED: dict[tuple[TopupStatus, Payment], tuple[TopupStatus, TopupOutcome, bool] | None] = {
    (S.PENDING, P.PAID): (S.CREDITED, OUT.CREDITED, True),
    (S.PENDING, P.AWAITED): (S.PENDING, OUT.AWAITING_PAYMENT, False),
    (S.PENDING, P.FAILED): (S.FAILED, OUT.FAILED, False),
    (S.CREDITED, P.PAID): (S.CREDITED, OUT.ALREADY_CREDITED, False),
    (S.CREDITED, P.AWAITED): (S.CREDITED, OUT.AWAITING_PAYMENT, False),
    (S.CREDITED, P.FAILED): (S.CREDITED, OUT.UNCHANGED, False),
    (S.FAILED, P.PAID): None,
    (S.FAILED, P.AWAITED): (S.FAILED, OUT.AWAITING_PAYMENT, False),
    (S.FAILED, P.FAILED): (S.FAILED, OUT.UNCHANGED, False),
}


def test_the_table_covers_every_status_and_payment_pair() -> None:
    assert set(EXPECTED) == set(itertools.product(TopupStatus, Payment))


@pytest.mark.parametrize(("status", "payment"), list(EXPECTED), ids=lambda v: str(v))
def test_each_status_and_payment_has_its_expected_outcome(status: TopupStatus, payment: Payment) -> None:
    decision = decide(status, payment)
    assert decision.status_before is status
    expected = EXPECTED[(status, payment)]
    if expected is None:
        assert decision.refused
        assert (decision.status_after, decision.changes_status, decision.credits) == (status, False, False)
    else:
        status_after, outcome, credits = expected
        assert not decision.refused
        assert (decision.status_after, decision.outcome, decision.credits) == (status_after, outcome, credits)
        assert decision.changes_status is (status_after is not status)


def test_only_a_pending_topup_ever_changes_status() -> None:
    moves = {(before, after) for (before, _), (after, _) in TRANSITIONS.items() if after is not before}
    assert moves == {(S.PENDING, S.CREDITED), (S.PENDING, S.FAILED)}


def test_decide_accepts_the_stored_strings() -> None:
    assert decide("pending", "paid").credits
    with pytest.raises(ValueError):
        decide("expired", "paid")


def test_the_refusal_names_the_status_for_the_operator() -> None:
    assert refusal_message(S.FAILED) == "The checkout top-up is failed; it cannot be credited."
