"""Usage reporting (SPEC §14): ``POST /v1/usage/events`` and the app's recent usage.

One event → 201 with the rated amounts and the end user's new balance (200 with the
original result for a duplicate; 402/404/409/400 as a normal error). ``{"events": [...]}``
(up to 1000) → 200 with one result per event, ``recorded``, ``duplicate`` or ``rejected``
with its error in the SPEC §3 shape; an invalid event is rejected on its own.

Events go through the process's group-commit engine; the handler awaits its own futures.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from ...domain.money import format_usd
from ...domain.outcomes import InvalidRequest, Refusal
from ...domain.rating import MAX_TOKENS, RouteMode
from ...domain.timestamps import iso
from ...services import app_usage
from ...services.context import Actor
from ...services.posting_engine import PostingEngine
from ...services.record_usage import UsageEvent, UsageReceipt, UsageStatus
from ...services.repositories import UsageLine
from ..deps import AdminActor, Context, get_context, require_gateway
from ..errors import error_body, request_id_of, status_for, validation_refusal
from ..schemas import StrictModel, UsdString, UsdUnits, error_responses

router = APIRouter(tags=["usage"])

MAX_EVENTS = 1000

Key = Annotated[str, Field(min_length=1, max_length=64)]
Tokens = Annotated[int, Field(strict=True, ge=0, le=MAX_TOKENS)]


class UsageEventIn(StrictModel):
    request_id: Annotated[str, Field(min_length=1, max_length=128)]
    public_app_id: Key
    external_user_id: Annotated[str, Field(min_length=1, max_length=256)]
    feature_key: Key
    route_mode: RouteMode
    provider: Key
    model: Annotated[str, Field(min_length=1, max_length=128)]
    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    cached_tokens: Tokens = 0
    upstream_cost_usd: UsdUnits | None = None
    hold_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    def command(self) -> UsageEvent:
        return UsageEvent(
            request_id=self.request_id,
            public_app_id=self.public_app_id,
            external_user_id=self.external_user_id,
            feature_key=self.feature_key,
            route_mode=self.route_mode,
            provider=self.provider,
            model=self.model,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cached_tokens=self.cached_tokens,
            upstream_cost_units=self.upstream_cost_usd,
            hold_id=self.hold_id,
        )


class UsageResult(BaseModel):
    request_id: str
    usage_event_id: str
    transaction_id: str | None
    route_mode: str
    upstream_cost_usd: UsdString
    retail_price_usd: UsdString
    channel_revenue_usd: UsdString
    platform_revenue_usd: UsdString
    gateway_fee_usd: UsdString
    end_user_wallet_id: str | None
    end_user_balance_usd: UsdString
    created_at: str
    hold_id: str | None = Field(default=None, description="The hold this event captured (SPEC §18), else null.")
    uncollected_usd: UsdString = Field(
        description="The part of the price the wallet could not pay, posted to uncollected_usage (a captured hold "
        "only; else 0)."
    )


class RecordedUsage(UsageResult):
    status: str = Field(examples=["recorded"])


class BatchItem(BaseModel):
    index: int
    request_id: str | None
    status: str = Field(examples=["recorded", "duplicate", "rejected"])
    result: UsageResult | None = None
    error: dict[str, Any] | None = None


class BatchResult(BaseModel):
    summary: dict[str, int]
    items: list[BatchItem]


class UsageBody(StrictModel):
    """Documentation of the two accepted bodies; parsing is done by hand per event."""

    events: list[UsageEventIn] | None = Field(default=None, max_length=MAX_EVENTS)


def _inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its ``$defs`` inlined (the body is parsed by hand, so
    FastAPI does not register these models as components)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


async def gateway_actor(request: Request) -> Actor:
    """The gateway check of :func:`~modelfaucet.http.deps.require_gateway`, as an ``async``
    dependency: it only compares a token, so it runs on the event loop instead of costing
    the hot ingestion route two thread-pool hops per request."""
    return require_gateway(request, get_context(request))


FastGatewayActor = Annotated[Actor, Depends(gateway_actor)]


def engine_for(request: Request) -> PostingEngine:
    engine: PostingEngine = request.app.state.usage_posting_engine
    return engine


def _receipt_json(receipt: UsageReceipt) -> dict[str, Any]:
    return {
        "request_id": receipt.request_id,
        "usage_event_id": receipt.usage_event_id,
        "transaction_id": receipt.transaction_id,
        "route_mode": receipt.route_mode.value,
        "upstream_cost_usd": format_usd(receipt.upstream_cost_units),
        "retail_price_usd": format_usd(receipt.retail_price_units),
        "channel_revenue_usd": format_usd(receipt.channel_revenue_units),
        "platform_revenue_usd": format_usd(receipt.platform_revenue_units),
        "gateway_fee_usd": format_usd(receipt.gateway_fee_units),
        "end_user_wallet_id": receipt.end_user_wallet_id,
        "end_user_balance_usd": format_usd(receipt.end_user_balance_units),
        "created_at": iso(receipt.created_at),
        "hold_id": receipt.hold_id,
        "uncollected_usd": format_usd(receipt.uncollected_units),
    }


def _error(refusal: Refusal, request_id: str) -> dict[str, Any]:
    body: dict[str, Any] = error_body(refusal.code, refusal.message, request_id, refusal.details)["error"]
    return body


@router.post(
    "/v1/usage/events",
    status_code=201,
    response_model=RecordedUsage | BatchResult,
    responses={200: {"model": BatchResult}, **error_responses(400, 401, 402, 403, 404, 409, 413)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"oneOf": [_inline_schema(UsageEventIn), _inline_schema(UsageBody)]}}
            },
        }
    },
)
async def post_usage_events(request: Request, _actor: FastGatewayActor) -> Any:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest('The body must be a usage event or {"events": [...]}.')
    if "events" in body:
        return await _post_batch(request, body)
    try:
        event = UsageEventIn.model_validate(body)
    except ValidationError as exc:
        raise validation_refusal(exc.errors(), fallback="Invalid usage event.") from None
    outcome = await engine_for(request).post(event.command())
    if outcome.error is not None:
        raise outcome.error
    if outcome.receipt is None:  # pragma: no cover - recorded/duplicate always carry a receipt
        raise InvalidRequest("No result.")
    status = 201 if outcome.status is UsageStatus.RECORDED else 200
    return JSONResponse({"status": outcome.status.value, **_receipt_json(outcome.receipt)}, status_code=status)


async def _post_batch(request: Request, body: dict[str, Any]) -> JSONResponse:
    if set(body) != {"events"}:
        raise InvalidRequest("A batch body has only the field events.", details={"field": "events"})
    raw = body["events"]
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_EVENTS:
        raise InvalidRequest(f"events must be a list of 1 to {MAX_EVENTS} usage events.", details={"field": "events"})
    request_id = request_id_of(request)
    items: list[dict[str, Any]] = [{} for _ in raw]
    commands: list[tuple[int, UsageEvent]] = []
    for index, item in enumerate(raw):
        rid = item.get("request_id") if isinstance(item, dict) else None
        items[index] = {"index": index, "request_id": rid if isinstance(rid, str) else None}
        try:
            commands.append((index, UsageEventIn.model_validate(item).command()))
        except ValidationError as exc:
            refusal = validation_refusal(exc.errors(), prefix=f"events.{index}.", fallback="Invalid usage event.")
            items[index].update(status=UsageStatus.REJECTED.value, error={**_error(refusal, request_id), "status": 400})
    outcomes = await engine_for(request).post_many([command for _, command in commands])
    for (index, _), outcome in zip(commands, outcomes, strict=True):
        if outcome.error is not None:
            error = {**_error(outcome.error, request_id), "status": status_for(outcome.error)}
            items[index].update(status=UsageStatus.REJECTED.value, error=error)
        elif outcome.receipt is not None:
            items[index].update(status=outcome.status.value, result=_receipt_json(outcome.receipt))
    summary = {status.value: sum(1 for item in items if item["status"] == status.value) for status in UsageStatus}
    return JSONResponse({"summary": summary, "items": items}, status_code=200)


class AppUsageList(BaseModel):
    public_app_id: str
    items: list[dict[str, Any]]


@router.get("/v1/apps/{public_app_id}/usage", response_model=AppUsageList, responses=error_responses(400, 401, 404))
def get_app_usage(
    ctx: Context,
    _actor: AdminActor,
    public_app_id: Annotated[str, Path(max_length=64)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    usage = app_usage.recent_usage(ctx, public_app_id, limit=limit)
    return {"public_app_id": usage.public_app_id, "items": [_line_json(line) for line in usage.items]}


def _line_json(line: UsageLine) -> dict[str, Any]:
    return {
        "created_at": iso(line.created_at),
        "request_id": line.request_id,
        "feature_key": line.feature_key,
        "route_mode": line.route_mode.value,
        "provider": line.provider,
        "model": line.model,
        "input_tokens": line.input_tokens,
        "output_tokens": line.output_tokens,
        "cached_tokens": line.cached_tokens,
        "upstream_cost_usd": format_usd(line.upstream_cost_units),
        "retail_price_usd": format_usd(line.retail_price_units),
        "channel_revenue_usd": format_usd(line.channel_revenue_units),
        "platform_revenue_usd": format_usd(line.platform_revenue_units),
        "gateway_fee_usd": format_usd(line.gateway_fee_units),
        "transaction_id": line.transaction_id,
    }
