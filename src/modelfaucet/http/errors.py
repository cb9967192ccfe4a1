"""The one table from outcome to HTTP status, and the error body.

Every error is ``{"error": {"code", "message", "request_id", "details"}}``. ``details`` has
one shape per kind of refusal (see :class:`modelfaucet.http.schemas.ErrorDetail`):

- a field is wrong: ``{"field": "amount_usd", "reason": "must be greater than 0"}`` —
  ``field`` is the dotted path of the first offending field (``body`` when the body itself is
  not JSON), ``reason`` is optional; the message lists up to five offending fields;
- an idempotency key was reused with a different request: ``{"differing_fields": [...]}``
  plus the key (``idempotency_key`` or ``request_id``);
- other refusals carry the ids they concern (``wallet_id``, ``payout_id``, …).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..domain import outcomes
from ..domain.outcomes import InvalidRequest, Refusal

log = logging.getLogger("modelfaucet.http")


STATUS_BY_REFUSAL: dict[type[Refusal], int] = {
    outcomes.InvalidRequest: 400,
    outcomes.InvalidSession: 401,
    outcomes.ExpiredSession: 401,
    outcomes.InsufficientBalance: 402,
    outcomes.Forbidden: 403,
    outcomes.NotFound: 404,
    outcomes.IdempotencyConflict: 409,
    outcomes.InvalidState: 409,
    outcomes.RateLimited: 429,
    outcomes.UpstreamError: 502,
    outcomes.ServiceUnavailable: 503,
}

_MESSAGES_BY_STATUS = {
    404: ("not_found", "The requested resource was not found."),
    405: ("invalid_request", "The method is not allowed on this resource."),
}


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def error_body(code: str, message: str, request_id: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": request_id, "details": details or {}}}


def error_response(
    request: Request, status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    headers = {}
    if details and "retry_after_seconds" in details:
        headers["retry-after"] = str(details["retry_after_seconds"])
    if status == 401:  # RFC 9110: a 401 names the scheme that would be accepted
        headers["www-authenticate"] = "Bearer"
    return JSONResponse(error_body(code, message, request_id_of(request), details), status_code=status, headers=headers)


def status_for(refusal: Refusal) -> int:
    for cls in type(refusal).__mro__:
        if cls in STATUS_BY_REFUSAL:
            return STATUS_BY_REFUSAL[cls]
    return 400


def install_error_handlers(app: FastAPI) -> None:
    async def on_refusal(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Refusal)
        return error_response(request, status_for(exc), exc.code, exc.message, exc.details)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        refusal = validation_refusal(exc.errors())
        return error_response(request, 400, refusal.code, refusal.message, refusal.details)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code, message = _MESSAGES_BY_STATUS.get(exc.status_code, ("invalid_request", "The request was refused."))
        return error_response(request, exc.status_code, code, message)

    async def on_database(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
            log.warning("database unavailable", extra={"request_id": request_id_of(request)})
            return error_response(request, 503, "service_unavailable", "The database is unavailable; retry shortly.")
        if isinstance(exc, DataError):
            # The database refused a value the request carried (a NUL character in a text
            # field on PostgreSQL, a number out of a column's range): the transaction rolled
            # back, nothing was written, and it is the caller's input, not a bug.
            log.warning("database refused a request value", extra={"request_id": request_id_of(request)})
            return error_response(
                request, 400, "invalid_request", "A value in the request cannot be stored (e.g. a NUL character)."
            )
        return await on_unexpected(request, exc)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unhandled error %s",
            type(exc).__name__,
            exc_info=exc,
            extra={"request_id": request_id_of(request)},
        )
        return error_response(request, 500, "internal_error", "An internal error occurred.")

    app.add_exception_handler(Refusal, on_refusal)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(DBAPIError, on_database)


def field_details(field: str, reason: str | None = None) -> dict[str, str]:
    """The one shape of a field error's ``details``."""
    return {"field": field} if reason is None else {"field": field, "reason": reason}


def validation_refusal(
    errors: Sequence[Any], *, prefix: str = "", fallback: str = "Invalid request."
) -> InvalidRequest:
    """A 400 for failed validation: the message names up to five fields, ``details`` the first.

    ``prefix`` places the fields inside a larger body (``events.3.``: the fourth event of a batch).
    """
    described = [describe_validation_error(error) for error in errors]
    for item in described:
        whole = item["field"] == "body"
        item["field"] = (prefix.rstrip(".") if whole else prefix + item["field"]) if prefix else item["field"]
    if any(error.get("type") == "json_invalid" for error in errors):
        message = "The request body is not valid JSON."
    else:
        message = "; ".join(f"{f['field']}: {f['message']}" for f in described[:5]) or fallback
    first = described[0] if described else {"field": "body", "message": fallback}
    return InvalidRequest(message, details=field_details(first["field"], first["message"]))


def describe_validation_error(error: Any) -> dict[str, str]:
    """A validation error without the offending input (it could be a secret)."""
    if error.get("type") == "json_invalid":
        # FastAPI puts the decoder's character position where a field name goes.
        position = [part for part in error.get("loc", ()) if isinstance(part, int)]
        reason = str(error.get("ctx", {}).get("error") or "not valid JSON")
        return {"field": "body", "message": reason + (f" at character {position[0]}" if position else "")}
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "header")]
    message = str(error.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    return {"field": ".".join(location) or "body", "message": message}
