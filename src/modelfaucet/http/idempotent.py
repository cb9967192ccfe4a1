"""HTTP side of idempotent writes (see :mod:`modelfaucet.services.idempotency`).

``IdempotencyKeyHeader`` reads the ``Idempotency-Key`` header; :func:`idempotent_response`
renders a service's result, marking the stored result of an earlier request with
``Idempotent-Replayed: true``. The same typed result always renders to the same bytes, so
a replay is byte-identical to the first answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ..services.idempotency import Idempotent

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Idempotency key (8–128 characters); may be sent in the body instead.",
    ),
]


def idempotent_response(outcome: Idempotent[Any], body: BaseModel, *, status_code: int) -> JSONResponse:
    headers = {"idempotent-replayed": "true"} if outcome.replayed else {}
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code, headers=headers)
