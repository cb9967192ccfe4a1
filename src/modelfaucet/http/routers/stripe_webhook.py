"""``POST /v1/stripe/webhook``: the signature is checked over the raw request bytes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ...services.stripe_webhook import handle_stripe_webhook
from ..deps import Context
from ..schemas import error_responses

router = APIRouter(tags=["stripe"])


@router.post(
    "/v1/stripe/webhook",
    responses={
        200: {"description": "Event received (credited, duplicate, ignored…)"},
        **error_responses(400, 404, 409),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def stripe_webhook(request: Request, ctx: Context) -> Any:
    # The raw bytes, never a re-serialised parse: the signature covers them exactly.
    payload = await request.body()
    result = await run_in_threadpool(
        handle_stripe_webhook,
        ctx,
        payload=payload,
        signature_header=request.headers.get("stripe-signature"),
    )
    body = result.to_record()
    if result.duplicate:
        body["duplicate"] = True
    return JSONResponse(body, status_code=200)
