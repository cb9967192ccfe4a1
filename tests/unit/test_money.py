"""Money on the wire (SPEC §2): one table of valid inputs, one of invalid ones."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelfaucet.domain.money import (
    MAX_UNITS,
    MoneyError,
    cents_to_units,
    format_usd,
    parse_usd,
    split_bps,
    units_to_cents,
)

VALID = [
    ("0", 0),
    ("0.0", 0),
    ("0.00000001", 1),
    ("1", 100_000_000),
    ("2.5", 250_000_000),
    ("2.50000000", 250_000_000),
    ("10.00000000", 1_000_000_000),
    ("0.12345678", 12_345_678),
    ("999999999.99999999", 99_999_999_999_999_999),
    ("10000000000", MAX_UNITS),
]

INVALID = [
    ("", "empty"),
    ("-1", "sign"),
    ("+1", "plus sign"),
    ("1e3", "exponent"),
    ("1E-2", "exponent"),
    ("01", "leading zero"),
    ("00.5", "leading zeros"),
    (".5", "no integer part"),
    ("5.", "dangling point"),
    ("1.123456789", "nine decimals"),
    (" 1", "leading space"),
    ("1 ", "trailing space"),
    ("1,5", "comma"),
    ("NaN", "nan"),
    ("Infinity", "infinity"),
    ("0x10", "hex"),
    ("1_000", "underscore"),
    ("١", "non-ASCII digit"),
    ("1234567890123", "13 integer digits"),
    ("10000000000.00000001", "just above the maximum"),
    ("999999999999", "above the maximum"),
    ("1.0\n", "trailing newline"),
]

NON_STRINGS = [5, 2.5, None, True, [], {}]


@pytest.mark.parametrize(("wire", "units"), VALID)
def test_valid_wire_amounts_parse_to_integer_units(wire: str, units: int) -> None:
    assert parse_usd(wire) == units


@pytest.mark.parametrize(("wire", "why"), INVALID)
def test_invalid_wire_amounts_are_refused_with_the_field_named(wire: str, why: str) -> None:
    with pytest.raises(MoneyError, match="threshold_usd"):
        parse_usd(wire, field="threshold_usd")


@pytest.mark.parametrize("value", NON_STRINGS)
def test_json_numbers_and_other_types_are_refused(value: object) -> None:
    with pytest.raises(MoneyError, match="must be a string"):
        parse_usd(value)


@pytest.mark.parametrize(
    ("units", "wire"),
    [(0, "0.00000000"), (1, "0.00000001"), (250_000_000, "2.50000000"), (-150_000_000, "-1.50000000")],
)
def test_format_always_has_exactly_eight_decimals(units: int, wire: str) -> None:
    assert format_usd(units) == wire


def test_format_refuses_floats_and_bools() -> None:
    with pytest.raises(TypeError):
        format_usd(2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_usd(True)


@given(st.integers(min_value=0, max_value=MAX_UNITS))
def test_format_then_parse_round_trips(units: int) -> None:
    assert parse_usd(format_usd(units)) == units


@pytest.mark.parametrize(
    ("amount", "bps", "share", "rest"),
    [
        (300_000, 4000, 120_000, 180_000),
        (1, 4000, 0, 1),
        (3, 5000, 1, 2),
        (999, 0, 0, 999),
        (999, 10_000, 999, 0),
        (0, 4000, 0, 0),
    ],
)
def test_basis_point_split_rounds_the_share_down_and_parts_add_up(amount: int, bps: int, share: int, rest: int) -> None:
    assert split_bps(amount, bps) == (share, rest)


@given(st.integers(min_value=0, max_value=MAX_UNITS), st.integers(min_value=0, max_value=10_000))
def test_basis_point_split_parts_always_sum_to_the_whole(amount: int, bps: int) -> None:
    share, rest = split_bps(amount, bps)
    assert share + rest == amount
    assert 0 <= share <= amount


@pytest.mark.parametrize("bps", [-1, 10_001])
def test_basis_point_split_refuses_shares_outside_0_to_10000(bps: int) -> None:
    with pytest.raises(ValueError, match="share_bps"):
        split_bps(100, bps)


def test_stripe_cents_conversion_requires_whole_cents() -> None:
    assert units_to_cents(parse_usd("5.00")) == 500
    assert units_to_cents(parse_usd("0.01")) == 1
    assert cents_to_units(500) == parse_usd("5")
    with pytest.raises(MoneyError, match="whole number of cents"):
        units_to_cents(parse_usd("5.001"))
