"""Holds (SPEC §18): ``POST /v1/usage/holds`` and ``POST /v1/usage/holds/{hold_id}/void``.

Both go through the hold engine (:mod:`modelfaucet.services.hold_engine`): concurrent
placements and voids are decided and written together, one transaction per batch.

One hold → 201 (200 with the same hold when its ``request_id`` was seen with the same
body; 402/404/409/400 as a normal error). ``{"holds": [...]}`` (up to 1000) → 200 with
one result per hold, ``held``, ``duplicate`` or ``rejected`` with its error, like a batch of
usage events. The usage event captures a hold (``/v1/usage/events``, same ``request_id`` or
``hold_id``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from ...domain.holds import DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS
from ...domain.money import format_usd
from ...domain.outcomes import InvalidRequest
from ...domain.timestamps import iso
from ...services.hold_engine import HoldEngine, placement
from ...services.holds import HoldOutcome, PlaceHold, void_result
from ...services.repositories import HoldRecord
from ..errors import request_id_of, status_for, validation_refusal
from ..schemas import PositiveUsdUnits, StrictModel, UsdString, error_responses, parse_uuid
from .usage import FastGatewayActor, Key, _error, _inline_schema

router = APIRouter(tags=["usage"])

MAX_HOLDS = 1000
_DUPLICATE = "duplicate"
_REJECTED = "rejected"


class HoldIn(StrictModel):
    request_id: Annotated[str, Field(min_length=1, max_length=128)]
    public_app_id: Key
    external_user_id: Annotated[str, Field(min_length=1, max_length=256)]
    feature_key: Key
    amount_usd: PositiveUsdUnits
    ttl_seconds: Annotated[int, Field(strict=True, ge=1, le=MAX_TTL_SECONDS)] = DEFAULT_TTL_SECONDS

    def command(self) -> PlaceHold:
        return PlaceHold(
            request_id=self.request_id,
            public_app_id=self.public_app_id,
            external_user_id=self.external_user_id,
            feature_key=self.feature_key,
            amount_units=self.amount_usd,
            ttl_seconds=self.ttl_seconds,
        )


class HoldBody(StrictModel):
    """Documentation of the two accepted bodies; parsing is done by hand per hold."""

    holds: list[HoldIn] | None = Field(default=None, max_length=MAX_HOLDS)


class HoldOut(BaseModel):
    hold_id: str
    request_id: str
    status: str = Field(examples=["held", "captured", "released", "expired"])
    amount_usd: UsdString
    created_at: str
    expires_at: str
    ended_at: str | None
    available_usd: UsdString | None = None


class HoldBatchItem(BaseModel):
    index: int
    request_id: str | None
    status: str = Field(examples=["held", "duplicate", "rejected"])
    result: HoldOut | None = None
    error: dict[str, Any] | None = None


class HoldBatchResult(BaseModel):
    summary: dict[str, int]
    items: list[HoldBatchItem]


def hold_engine_for(request: Request) -> HoldEngine:
    engine: HoldEngine = request.app.state.hold_engine
    return engine


async def _place(request: Request, commands: list[PlaceHold]) -> list[HoldOutcome]:
    return [placement(outcome) for outcome in await hold_engine_for(request).place(commands)]


def _hold_json(hold: HoldRecord, *, available_units: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hold_id": hold.id,
        "request_id": hold.request_id,
        "status": hold.status.value,
        "amount_usd": format_usd(hold.amount_units),
        "created_at": iso(hold.created_at),
        "expires_at": iso(hold.expires_at),
        "ended_at": None if hold.ended_at is None else iso(hold.ended_at),
    }
    if available_units is not None:
        body["available_usd"] = format_usd(available_units)
    return body


def _outcome_json(outcome: HoldOutcome) -> dict[str, Any]:
    if outcome.hold is None:  # pragma: no cover - an outcome without an error has its hold
        raise InvalidRequest("No result.")
    return _hold_json(outcome.hold, available_units=outcome.available_units)


@router.post(
    "/v1/usage/holds",
    status_code=201,
    response_model=HoldOut | HoldBatchResult,
    responses={200: {"model": HoldBatchResult}, **error_responses(400, 401, 402, 403, 404, 409, 413)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": [_inline_schema(HoldIn), _inline_schema(HoldBody)]}}},
        }
    },
)
async def post_holds(request: Request, _actor: FastGatewayActor) -> Any:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest('The body must be a hold or {"holds": [...]}.')
    if "holds" in body:
        return await _post_batch(request, body)
    try:
        command = HoldIn.model_validate(body).command()
    except ValidationError as exc:
        raise validation_refusal(exc.errors(), fallback="Invalid hold.") from None
    [outcome] = await _place(request, [command])
    if outcome.error is not None:
        raise outcome.error
    return JSONResponse(_outcome_json(outcome), status_code=201 if outcome.created else 200)


async def _post_batch(request: Request, body: dict[str, Any]) -> JSONResponse:
    if set(body) != {"holds"}:
        raise InvalidRequest("A batch body has only the field holds.", details={"field": "holds"})
    raw = body["holds"]
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_HOLDS:
        raise InvalidRequest(f"holds must be a list of 1 to {MAX_HOLDS} holds.", details={"field": "holds"})
    request_id = request_id_of(request)
    items: list[dict[str, Any]] = []
    commands: list[tuple[int, PlaceHold]] = []
    for index, item in enumerate(raw):
        rid = item.get("request_id") if isinstance(item, dict) else None
        items.append({"index": index, "request_id": rid if isinstance(rid, str) else None})
        try:
            commands.append((index, HoldIn.model_validate(item).command()))
        except ValidationError as exc:
            refusal = validation_refusal(exc.errors(), prefix=f"holds.{index}.", fallback="Invalid hold.")
            items[index].update(status=_REJECTED, error={**_error(refusal, request_id), "status": 400})
    outcomes = await _place(request, [command for _, command in commands])
    for (index, _), outcome in zip(commands, outcomes, strict=True):
        if outcome.error is not None:
            error = {**_error(outcome.error, request_id), "status": status_for(outcome.error)}
            items[index].update(status=_REJECTED, error=error)
        else:
            status = outcome.hold.status.value if outcome.created and outcome.hold else _DUPLICATE
            items[index].update(status=status, result=_outcome_json(outcome))
    summary = {name: sum(1 for item in items if item["status"] == name) for name in ("held", _DUPLICATE, _REJECTED)}
    return JSONResponse({"summary": summary, "items": items}, status_code=200)


@router.post(
    "/v1/usage/holds/{hold_id}/void",
    response_model=HoldOut,
    responses=error_responses(400, 401, 404, 409),
)
async def post_void_hold(
    request: Request, _actor: FastGatewayActor, hold_id: Annotated[str, Path(max_length=64)]
) -> Any:
    hold_id = parse_uuid(hold_id, field="hold_id")
    hold = void_result(await hold_engine_for(request).void_hold(hold_id))
    return _hold_json(hold)
