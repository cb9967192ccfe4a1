"""Money: integer units of 1e-8 USD, parsed and formatted only at the edges.

This module is the only place that converts between the wire form (a JSON string with up
to 8 decimals) and the stored form (an integer count of 1e-8 USD), between units and
Stripe cents, and that splits an amount by basis points.
"""

from __future__ import annotations

import re

UNITS_PER_USD = 100_000_000
UNITS_PER_CENT = 1_000_000
SCALE_DIGITS = 8
BPS_DENOMINATOR = 10_000

# 12 integer digits caps a wire amount below 1e12 USD, far inside a signed 64-bit column
# (9.2e18 units = 9.2e10 USD... so the column bound is the tighter one; see MAX_UNITS).
_WIRE_PATTERN = re.compile(r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,8})?$")

# The largest amount a single field may carry: 10 billion USD. It keeps every sum of a
# realistic number of amounts far inside BIGINT (9.22e18 units = 92.2 billion USD).
MAX_UNITS = 10_000_000_000 * UNITS_PER_USD


class MoneyError(ValueError):
    """An amount on the wire that is not a valid USD string."""


def parse_usd(value: object, *, field: str = "amount_usd") -> int:
    """Parse a wire amount (``"2.50000000"``) into integer units of 1e-8 USD.

    Accepts only a JSON string matching ``^(0|[1-9][0-9]{0,11})(\\.[0-9]{1,8})?$``:
    no sign, exponent, JSON number, leading zeros, whitespace or more than 8 decimals.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        raise MoneyError(f'{field} must be a string such as "2.50000000", not a JSON {_json_kind(value)}.')
    if not _WIRE_PATTERN.fullmatch(value):
        raise MoneyError(f'{field} must be a non-negative USD amount with at most 8 decimals, such as "2.50000000".')
    whole, _, fraction = value.partition(".")
    units = int(whole) * UNITS_PER_USD + int(fraction.ljust(SCALE_DIGITS, "0") or "0")
    if units > MAX_UNITS:
        raise MoneyError(f"{field} is larger than the maximum of {format_usd(MAX_UNITS)}.")
    return units


def format_usd(units: int) -> str:
    """Format integer units as the wire string with exactly 8 decimals."""
    if type(units) is not int:  # not a float, not a bool (a hot path: reports call it per cell)
        raise TypeError("money is an int of 1e-8 USD units")
    if units >= 0:
        whole, fraction = divmod(units, UNITS_PER_USD)
        return f"{whole}.{fraction:08d}"
    whole, fraction = divmod(-units, UNITS_PER_USD)
    return f"-{whole}.{fraction:08d}"


def units_to_cents(units: int) -> int:
    """Convert units to Stripe cents; refuses amounts that are not whole cents."""
    cents, remainder = divmod(units, UNITS_PER_CENT)
    if remainder:
        raise MoneyError("amount_usd must be a whole number of cents for a Stripe payment.")
    return cents


def cents_to_units(cents: int) -> int:
    return cents * UNITS_PER_CENT


def split_bps(amount_units: int, share_bps: int) -> tuple[int, int]:
    """Split ``amount_units`` into (share, rest), the share rounded down.

    The two parts always add up to the whole amount exactly.
    """
    if not 0 <= share_bps <= BPS_DENOMINATOR:
        raise ValueError("share_bps must be within 0..10000")
    if amount_units < 0:
        raise ValueError("cannot split a negative amount")
    share = amount_units * share_bps // BPS_DENOMINATOR
    return share, amount_units - share


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
