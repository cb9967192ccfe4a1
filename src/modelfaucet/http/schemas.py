"""Schemas shared by several routers: money on the wire, ids, the error body."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator

from ..domain.ledger import AccountState
from ..domain.money import MoneyError, format_usd, parse_usd

USD_PATTERN = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,8})?$"


def _parse_money(value: Any) -> int:
    try:
        return parse_usd(value, field="value")
    except MoneyError as exc:
        raise ValueError(str(exc).removeprefix("value ")) from None


# An amount on the wire: a USD string, parsed into integer units of 1e-8 USD.
UsdUnits = Annotated[
    int,
    BeforeValidator(_parse_money),
    WithJsonSchema({"type": "string", "pattern": USD_PATTERN, "examples": ["2.50000000"]}),
]


def _positive(value: int) -> int:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


PositiveUsdUnits = Annotated[UsdUnits, AfterValidator(_positive)]

# Output money: always exactly 8 decimals.
UsdString = Annotated[str, Field(pattern=r"^-?[0-9]+\.[0-9]{8}$", examples=["2.50000000"])]


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValueError("must be a UUID") from None


class StrictModel(BaseModel):
    """Request bodies: unknown fields are refused, strings are not coerced from numbers."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL and SQLite would store it: refuse it on both, at
        # the edge, so every engine answers the same 400.
        if _contains_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_contains_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_contains_nul(key) or _contains_nul(item) for key, item in value.items())
    return False


class WalletSummary(BaseModel):
    """A wallet as both its owner and an operator see it."""

    id: str
    owner_scope: str
    owner_id: str
    balance_usd: UsdString
    reserved_usd: UsdString
    available_usd: UsdString

    @classmethod
    def of(cls, wallet: AccountState) -> WalletSummary:
        return cls(**wallet_fields(wallet))


def wallet_fields(wallet: AccountState) -> dict[str, Any]:
    """A wallet's :class:`WalletSummary` fields (for the models that extend it)."""
    return {
        "id": wallet.account_id,
        "owner_scope": str(wallet.owner_scope),
        "owner_id": wallet.owner_id,
        "balance_usd": format_usd(wallet.balance_units),
        "reserved_usd": format_usd(wallet.reserved_units),
        "available_usd": format_usd(wallet.available_units),
    }


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str
    details: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "One shape per kind of refusal. A wrong field: "
            '{"field": "amount_usd", "reason": "must be greater than 0"} (the first offending field, '
            'as a dotted path; "body" when the body is not JSON; reason optional; the allowed values '
            "may follow). An idempotency key reused with a different request: "
            '{"differing_fields": ["amount_usd"], ...}. '
            "Other refusals name the ids they concern."
        ),
    )


class ErrorResponse(BaseModel):
    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error statuses a route may answer."""
    return {status: {"model": ErrorResponse} for status in statuses}


def parse_uuid(value: str, *, field: str) -> str:
    from ..domain.outcomes import InvalidRequest

    try:
        return _uuid(value)
    except ValueError:
        raise InvalidRequest(f"{field} must be a UUID.", details={"field": field}) from None
