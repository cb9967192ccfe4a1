"""Statements and point-in-time balances (SPEC §19): any wallet for operators, the caller's
own wallet for an end user (and, in :mod:`.developer`, for a developer).

A statement is checked first (wallet, owner, ``from``/``to``), so a refusal is an ordinary
JSON error; then it streams from one database snapshot — the JSON document as well as the
CSV — so memory stays flat for any number of entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ...domain.money import format_usd
from ...domain.timestamps import iso
from ...services import reports, statements
from ...services.context import ServiceContext
from ...services.statements import Statement, StatementEntry, StatementOf
from ..deps import AdminActor, Context, SessionUser
from ..schemas import UsdString, error_responses, parse_uuid

router = APIRouter(tags=["statements"])

TIME_HELP = "ISO-8601 date or time (UTC if no offset); from is inclusive, to exclusive."
From = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=64,
        description=TIME_HELP + " Default: the first instant of the month the window ends in.",
    ),
]
To = Annotated[str | None, Query(max_length=64, description=TIME_HELP + " Default: now.")]
# Entries per JSON chunk sent.
_ENTRIES_PER_CHUNK = 500


class BalanceAsOfOut(BaseModel):
    wallet_id: str
    as_of: str
    balance_usd: UsdString = Field(description="Rebuilt from the postings created before as_of.")


class StatementEntryOut(BaseModel):
    posted_at: str
    transaction_id: str
    reason: str
    amount_usd: Annotated[str, Field(pattern=r"^-?[0-9]+\.[0-9]{8}$", description="Signed: a debit is negative.")]
    balance_after_usd: UsdString
    reference: str | None = Field(description="What the transaction refers to, e.g. usage_event:req_123.")


class StatementOut(BaseModel):
    wallet_id: str
    from_: str = Field(alias="from")
    to: str
    opening_balance_usd: UsdString
    closing_balance_usd: UsdString = Field(description="opening + Σ entries; the balance as of `to`.")
    totals_by_reason: dict[str, str] = Field(description="The signed sum of the window's entries per reason.")
    entries: list[StatementEntryOut]


STATEMENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": StatementOut, "description": "The statement (streamed)."},
}
STATEMENT_CSV_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {}},
        "description": "posted_at,transaction_id,reason,amount_usd,balance_after_usd,reference — "
        "an opening_balance row first, a closing_balance row last (streamed).",
    },
}


def window_of(from_: str | None, to: str | None) -> tuple[datetime | None, datetime | None]:
    """The instants of a ``from``/``to`` query (400 if malformed); None where not given.
    Their order is the window's rule (:func:`~modelfaucet.domain.windows.reading_window`)."""
    return reports.parse_time_bound(from_, field="from"), reports.parse_time_bound(to, field="to")


def statement_response(ctx: ServiceContext, of: StatementOf, *, csv: bool) -> StreamingResponse:
    """Stream a checked statement as JSON or CSV from one snapshot."""

    def body() -> Iterator[bytes]:
        with statements.open_statement(ctx, of) as statement:
            yield from statements.statement_csv(statement) if csv else statement_json(statement)

    if csv:
        name = f"statement-{of.wallet_id}-{of.window.start:%Y%m%d}-{of.window.end:%Y%m%d}.csv"
        return StreamingResponse(
            body(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
        )
    return StreamingResponse(body(), media_type="application/json", headers={"cache-control": "no-store"})


def statement_json(statement: Statement) -> Iterator[bytes]:
    summary = statement.summary
    head = {
        "wallet_id": summary.wallet_id,
        "from": iso(summary.window.start),
        "to": iso(summary.window.end),
        "opening_balance_usd": format_usd(summary.opening_units),
        "closing_balance_usd": format_usd(summary.closing_units),
        "totals_by_reason": {reason: format_usd(total) for reason, total in summary.totals_by_reason.items()},
    }
    yield (json.dumps(head)[:-1] + ', "entries": [').encode()
    separator = ""
    batch: list[str] = []
    for entry in statement.entries:
        batch.append(json.dumps(_entry(entry)))
        if len(batch) == _ENTRIES_PER_CHUNK:
            yield (separator + ", ".join(batch)).encode()
            separator, batch = ", ", []
    if batch:
        yield (separator + ", ".join(batch)).encode()
    yield b"]}"


def _entry(entry: StatementEntry) -> dict[str, Any]:
    return {
        "posted_at": iso(entry.posted_at),
        "transaction_id": entry.transaction_id,
        "reason": entry.reason,
        "amount_usd": format_usd(entry.amount_units),
        "balance_after_usd": format_usd(entry.balance_after_units),
        "reference": entry.reference,
    }


# --- operators: any wallet -----------------------------------------------------------------


@router.get(
    "/v1/admin/wallets/{wallet_id}/balance",
    response_model=BalanceAsOfOut,
    responses=error_responses(400, 401, 404),
)
def get_balance_as_of(
    ctx: Context,
    _actor: AdminActor,
    wallet_id: str,
    as_of: Annotated[str | None, Query(max_length=64, description="ISO-8601 instant; default now.")] = None,
) -> BalanceAsOfOut:
    """The wallet's balance at an instant, rebuilt from the postings created before it."""
    found = statements.balance_as_of(
        ctx, parse_uuid(wallet_id, field="wallet_id"), as_of=reports.parse_time_bound(as_of, field="as_of")
    )
    return BalanceAsOfOut(
        wallet_id=found.wallet_id, as_of=iso(found.as_of), balance_usd=format_usd(found.balance_units)
    )


@router.get(
    "/v1/admin/wallets/{wallet_id}/statement",
    response_class=StreamingResponse,
    responses={**STATEMENT_RESPONSES, **error_responses(400, 401, 404)},
)
def get_wallet_statement(ctx: Context, _actor: AdminActor, wallet_id: str, from_: From = None, to: To = None) -> Any:
    """Any wallet's statement over [from, to): opening, entries with running balance, closing."""
    start, end = window_of(from_, to)
    of = statements.statement_of(ctx, parse_uuid(wallet_id, field="wallet_id"), start=start, end=end)
    return statement_response(ctx, of, csv=False)


@router.get(
    "/v1/admin/wallets/{wallet_id}/statement.csv",
    response_class=StreamingResponse,
    responses={**STATEMENT_CSV_RESPONSES, **error_responses(400, 401, 404)},
)
def get_wallet_statement_csv(
    ctx: Context, _actor: AdminActor, wallet_id: str, from_: From = None, to: To = None
) -> Any:
    start, end = window_of(from_, to)
    of = statements.statement_of(ctx, parse_uuid(wallet_id, field="wallet_id"), start=start, end=end)
    return statement_response(ctx, of, csv=True)


# --- the end user: their own wallet --------------------------------------------------------


@router.get(
    "/v1/user/statement",
    response_class=StreamingResponse,
    responses={**STATEMENT_RESPONSES, **error_responses(400, 401)},
)
def get_user_statement(ctx: Context, user: SessionUser, from_: From = None, to: To = None) -> Any:
    """The caller's own wallet statement over [from, to)."""
    start, end = window_of(from_, to)
    of = statements.statement_of(ctx, user.account_id, start=start, end=end)
    return statement_response(ctx, of, csv=False)


@router.get(
    "/v1/user/statement.csv",
    response_class=StreamingResponse,
    responses={**STATEMENT_CSV_RESPONSES, **error_responses(400, 401)},
)
def get_user_statement_csv(ctx: Context, user: SessionUser, from_: From = None, to: To = None) -> Any:
    start, end = window_of(from_, to)
    of = statements.statement_of(ctx, user.account_id, start=start, end=end)
    return statement_response(ctx, of, csv=True)
