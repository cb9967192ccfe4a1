"""The pure ledger core: balanced transactions only, constrained wallets never overdrawn.

Property-based: random sequences of transactions applied to a set of accounts keep every
invariant after each step; an unbalanced transaction is refused before anything is applied.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelfaucet.domain.ledger import (
    AccountState,
    OwnerScope,
    Posting,
    Transaction,
    apply_net_changes,
)
from modelfaucet.domain.outcomes import LedgerInvariantViolation

ACCOUNTS = {
    "a-user": OwnerScope.END_USER,
    "b-user": OwnerScope.END_USER,
    "c-dev": OwnerScope.DEVELOPER,
    "d-platform": OwnerScope.PLATFORM,
    "e-provider": OwnerScope.PROVIDER_COST,
    "f-clearing": OwnerScope.SYSTEM,
}


def test_a_balanced_transaction_is_accepted_and_nets_by_account_in_sorted_order() -> None:
    txn = Transaction.of(
        "usage_retail_price",
        [
            Posting.debit("b-user", 130, "usage_retail_price"),
            Posting.credit("e-provider", 100, "usage_provider_cost"),
            Posting.credit("c-dev", 12, "usage_channel_revenue"),
            Posting.credit("d-platform", 18, "usage_platform_revenue"),
        ],
    )
    assert list(txn.net_by_account()) == ["b-user", "c-dev", "d-platform", "e-provider"]
    assert sum(txn.net_by_account().values()) == 0


@pytest.mark.parametrize(
    "postings",
    [
        [Posting.debit("a-user", 100, "x"), Posting.credit("d-platform", 99, "x")],
        [Posting.credit("a-user", 1, "x"), Posting.credit("f-clearing", 1, "x")],
        [Posting.debit("a-user", 5, "x")],
        [],
    ],
    ids=["debits exceed credits", "two credits", "single posting", "empty"],
)
def test_an_unbalanced_transaction_is_refused_on_construction(postings: list[Posting]) -> None:
    with pytest.raises(LedgerInvariantViolation):
        Transaction.of("x", postings)


@pytest.mark.parametrize("amount", [0, -5, 1.5, True])
def test_postings_must_be_positive_integers(amount: object) -> None:
    with pytest.raises(LedgerInvariantViolation):
        Posting.credit("a-user", amount, "x")  # type: ignore[arg-type]


def test_a_zero_posting_cannot_be_built_directly() -> None:
    with pytest.raises(LedgerInvariantViolation):
        Posting("a-user", 0, "x")


def test_a_constrained_wallet_cannot_be_debited_below_its_reservation() -> None:
    accounts = {
        "c-dev": AccountState("c-dev", OwnerScope.DEVELOPER, balance_units=1000, reserved_units=600),
        "f-clearing": AccountState("f-clearing", OwnerScope.SYSTEM, balance_units=0),
    }
    assert apply_net_changes(accounts, {"c-dev": -400, "f-clearing": 400}).ok
    refused = apply_net_changes(accounts, {"c-dev": -401, "f-clearing": 401})
    assert refused.short_account_id == "c-dev"
    assert accounts["c-dev"].balance_units == 1000  # decided in copies, nothing mutated


def test_system_accounts_may_go_negative() -> None:
    accounts = {
        "a-user": AccountState("a-user", OwnerScope.END_USER, balance_units=0),
        "f-clearing": AccountState("f-clearing", OwnerScope.SYSTEM, balance_units=0),
    }
    check = apply_net_changes(accounts, {"a-user": 500, "f-clearing": -500})
    assert check.ok
    assert check.new_balances == {"a-user": 500, "f-clearing": -500}


account_ids = st.sampled_from(sorted(ACCOUNTS))
legs = st.lists(st.tuples(account_ids, st.integers(min_value=1, max_value=10**12)), min_size=1, max_size=4)


@st.composite
def transactions(draw: st.DrawFn) -> list[Posting]:
    """A random balanced transaction: some debits, balanced by credits on other accounts."""
    debits = draw(legs)
    total = sum(amount for _, amount in debits)
    creditors = draw(st.lists(account_ids, min_size=1, max_size=3))
    postings = [Posting.debit(account, amount, "random") for account, amount in debits]
    share, remainder = divmod(total, len(creditors))
    for index, account in enumerate(creditors):
        amount = share + (remainder if index == 0 else 0)
        if amount:
            postings.append(Posting.credit(account, amount, "random"))
    return postings


@given(st.lists(transactions(), max_size=30), st.dictionaries(account_ids, st.integers(0, 10**13)))
def test_random_sequences_of_transactions_keep_every_invariant(
    sequence: list[list[Posting]], opening: dict[str, int]
) -> None:
    # Opening balances come from a system account so the books start at zero too.
    states = {aid: AccountState(aid, scope, balance_units=0) for aid, scope in ACCOUNTS.items()}
    for aid, amount in opening.items():
        if aid != "f-clearing" and amount:
            states[aid].balance_units += amount
            states["f-clearing"].balance_units -= amount
    postings_log: list[Posting] = []
    for postings in sequence:
        try:
            txn = Transaction.of("random", postings)
        except LedgerInvariantViolation:
            continue  # e.g. a debit and a credit on the same account cancelled out
        check = apply_net_changes(states, txn.net_by_account())
        if not check.ok:
            short = states[check.short_account_id or ""]
            assert short.constrained
            assert short.balance_units + txn.net_by_account()[short.account_id] < short.reserved_units
            continue
        for aid, balance in check.new_balances.items():
            states[aid].balance_units = balance
        postings_log.extend(txn.postings)
        # Invariant 2: all balances sum to zero.
        assert sum(s.balance_units for s in states.values()) == 0
        # Invariant 4: constrained wallets never below zero.
        assert all(s.balance_units >= s.reserved_units for s in states.values() if s.constrained)
    # Invariant 1/3: every balance equals opening + its postings.
    for aid, state in states.items():
        rebuilt = opening.get(aid, 0) if aid != "f-clearing" else -sum(v for k, v in opening.items() if k != aid)
        rebuilt += sum(p.amount_units for p in postings_log if p.account_id == aid)
        assert state.balance_units == rebuilt


def test_a_transfer_is_two_balanced_legs_from_the_debited_to_the_credited_account() -> None:
    txn = Transaction.transfer("wallet_refund", debit="contra", credit="wallet", amount_units=250, reference_id="r")
    assert sorted((p.account_id, p.amount_units) for p in txn.postings) == [("contra", -250), ("wallet", 250)]
    assert {p.reason for p in txn.postings} == {"wallet_refund"}
    assert (txn.reason, txn.reference_id) == ("wallet_refund", "r")
    with pytest.raises(LedgerInvariantViolation):
        Transaction.transfer("wallet_refund", debit="contra", credit="wallet", amount_units=0)
