"""The hot-loop formatters of usage.csv give exactly what the general ones give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from modelfaucet.adapters.csvout import stream_csv
from modelfaucet.domain.money import format_usd
from modelfaucet.services.formatting import iso
from modelfaucet.services.reports import _iso_utc, _usd

MOMENTS = [
    datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    datetime(2025, 1, 2, 3, 4, 5),  # SQLite: naive, UTC
    datetime(2025, 1, 2, 3, 4, 5, 7, tzinfo=timezone(timedelta(hours=2))),
    datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(0))),
]


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_the_fast_timestamp_is_the_general_one(moment: datetime) -> None:
    assert _iso_utc(moment) == iso(moment)


@pytest.mark.parametrize("units", [0, 1, 99_999_999, 100_000_000, 136_500, 10**20, -1, -250_000_000])
def test_the_fast_amount_is_format_usd(units: int) -> None:
    assert _usd(units) == format_usd(units)


def test_the_fast_cell_path_still_neutralises_and_refuses_booleans() -> None:
    out = b"".join(stream_csv(["a", "b", "c", "d"], [["=1+1", "", 7, None], ["-2", "+x", "@y", "ok"]])).decode()
    assert out == "a,b,c,d\r\n'=1+1,,7,\r\n-2,'+x,'@y,ok\r\n"
    with pytest.raises(TypeError):
        list(stream_csv(["a"], [[True]]))
