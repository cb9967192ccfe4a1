"""What a unit of work reports as money moved: postings and positive units, per reason."""

from __future__ import annotations

from modelfaucet.domain.ledger import Posting, Transaction
from modelfaucet.services.signals import Moved, tally_moved


def test_postings_and_positive_units_are_counted_per_reason_and_added_to_what_came_before() -> None:
    first = Transaction.of("usage", [Posting("wallet", -150, "retail"), Posting("platform", 150, "revenue")])
    second = Transaction.of(
        "usage", [Posting("wallet", -40, "retail"), Posting("platform", 30, "revenue"), Posting("dev", 10, "share")]
    )
    earlier = {"revenue": Moved(2, 500), "payout": Moved(1, 7)}
    tally = tally_moved(earlier, [first, second])
    assert tally == {
        "retail": Moved(2, 0),  # debits are postings, but the money is counted on the positive side
        "revenue": Moved(4, 680),
        "share": Moved(1, 10),
        "payout": Moved(1, 7),
    }
    assert earlier == {"revenue": Moved(2, 500), "payout": Moved(1, 7)}  # not changed in place
    assert tally_moved({}, []) == {}
