"""The payout state machine: every (status, action) pair and its outcome, as one table."""

from __future__ import annotations

import itertools

import pytest

from modelfaucet.domain.payouts import (
    TRANSITIONS,
    Effect,
    PayoutAction,
    PayoutStatus,
    decide,
    payable_units,
    refusal_message,
)

P, A = PayoutStatus, PayoutAction
REFUSED, UNCHANGED = Effect.REFUSED, Effect.UNCHANGED

# (status, action) -> new status | UNCHANGED | REFUSED; all 5 x 4 pairs, nothing implied.
EXPECTED: dict[tuple[PayoutStatus, PayoutAction], PayoutStatus | Effect] = {
    (P.PENDING, A.APPROVE): P.PROCESSING,
    (P.PENDING, A.MARK_PAID): REFUSED,
    (P.PENDING, A.CANCEL): P.CANCELLED,
    (P.PENDING, A.MARK_FAILED): REFUSED,
    (P.PROCESSING, A.APPROVE): UNCHANGED,
    (P.PROCESSING, A.MARK_PAID): P.PAID,
    (P.PROCESSING, A.CANCEL): P.CANCELLED,
    (P.PROCESSING, A.MARK_FAILED): P.FAILED,
    (P.PAID, A.APPROVE): REFUSED,
    (P.PAID, A.MARK_PAID): UNCHANGED,
    (P.PAID, A.CANCEL): REFUSED,
    (P.PAID, A.MARK_FAILED): REFUSED,
    (P.FAILED, A.APPROVE): REFUSED,
    (P.FAILED, A.MARK_PAID): REFUSED,
    (P.FAILED, A.CANCEL): REFUSED,
    (P.FAILED, A.MARK_FAILED): REFUSED,
    (P.CANCELLED, A.APPROVE): REFUSED,
    (P.CANCELLED, A.MARK_PAID): REFUSED,
    (P.CANCELLED, A.CANCEL): REFUSED,
    (P.CANCELLED, A.MARK_FAILED): REFUSED,
}


def test_the_table_covers_every_status_and_action_pair() -> None:
    assert set(EXPECTED) == set(itertools.product(PayoutStatus, PayoutAction))


@pytest.mark.parametrize(("status", "action"), list(EXPECTED), ids=lambda v: str(v))
def test_each_status_and_action_has_its_expected_outcome(status: PayoutStatus, action: PayoutAction) -> None:
    expected = EXPECTED[(status, action)]
    decision = decide(status, action)
    assert decision.status_before is status
    if isinstance(expected, PayoutStatus):
        assert decision.effect is Effect.TRANSITION
        assert decision.status_after is expected
    else:
        assert decision.effect is expected
        assert decision.status_after is status


@pytest.mark.parametrize(
    ("status", "action", "releases", "posts"),
    [
        (P.PENDING, A.APPROVE, False, False),
        (P.PROCESSING, A.MARK_PAID, True, True),
        (P.PENDING, A.CANCEL, True, False),
        (P.PROCESSING, A.CANCEL, True, False),
        (P.PROCESSING, A.MARK_FAILED, True, False),
        (P.PAID, A.MARK_PAID, False, False),
        (P.PROCESSING, A.APPROVE, False, False),
    ],
)
def test_only_closing_transitions_release_the_reservation_and_only_paid_posts_money(
    status: PayoutStatus, action: PayoutAction, releases: bool, posts: bool
) -> None:
    decision = decide(status, action)
    assert decision.releases_reservation is releases
    assert decision.posts_payment is posts


def test_unlisted_pairs_are_exactly_the_refused_ones() -> None:
    refused = {pair for pair, outcome in EXPECTED.items() if outcome is REFUSED}
    assert refused == set(itertools.product(PayoutStatus, PayoutAction)) - set(TRANSITIONS)


def test_mark_paid_before_approval_explains_that_approval_comes_first() -> None:
    assert "approved into processing" in refusal_message("pending", "mark_paid")


@pytest.mark.parametrize(
    ("balance", "reserved", "held", "payable"),
    [
        (500, 0, 0, 500),
        (500, 200, 0, 300),
        (500, 0, 100, 400),
        (500, 200, 400, 0),  # floored at zero
        (0, 0, 0, 0),
        (500, 500, 0, 0),
    ],
)
def test_payable_is_available_minus_held_revenue_never_negative(
    balance: int, reserved: int, held: int, payable: int
) -> None:
    assert payable_units(balance_units=balance, reserved_units=reserved, held_units=held) == payable
