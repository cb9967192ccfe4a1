"""The formatters usage.csv calls per row: their fast paths give exactly the general output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from modelfaucet.adapters.csvout import stream_csv
from modelfaucet.domain.money import format_usd
from modelfaucet.domain.timestamps import iso

MOMENTS = [
    (datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "2025-01-02T03:04:05Z"),
    (datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), "2025-01-02T03:04:05.123456Z"),
    (datetime(2025, 1, 2, 3, 4, 5), "2025-01-02T03:04:05Z"),  # SQLite: naive, UTC
    (datetime(2025, 1, 2, 3, 4, 5, 7, tzinfo=timezone(timedelta(hours=2))), "2025-01-02T01:04:05.000007Z"),
    (datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(0))), "2025-01-02T03:04:05Z"),
]


@pytest.mark.parametrize(("moment", "expected"), MOMENTS, ids=str)
def test_timestamps_are_utc_with_a_z_whatever_the_offset(moment: datetime, expected: str) -> None:
    assert iso(moment) == expected


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        (0, "0.00000000"),
        (1, "0.00000001"),
        (99_999_999, "0.99999999"),
        (100_000_000, "1.00000000"),
        (136_500, "0.00136500"),
        (10**20, "1000000000000.00000000"),
        (-1, "-0.00000001"),
        (-250_000_000, "-2.50000000"),
    ],
)
def test_amounts_always_have_eight_decimals(units: int, expected: str) -> None:
    assert format_usd(units) == expected


def test_the_fast_cell_path_still_neutralises_and_refuses_booleans() -> None:
    out = b"".join(stream_csv(["a", "b", "c", "d"], [["=1+1", "", 7, None], ["-2", "+x", "@y", "ok"]])).decode()
    assert out == "a,b,c,d\r\n'=1+1,,7,\r\n-2,'+x,'@y,ok\r\n"
    with pytest.raises(TypeError):
        list(stream_csv(["a"], [[True]]))
