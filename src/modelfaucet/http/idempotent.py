"""HTTP side of idempotent writes (see :mod:`modelfaucet.services.idempotency`).

``IdempotencyKeyHeader`` reads the ``Idempotency-Key`` header; :func:`as_response` sends a
stored result exactly as it was first sent (status and body bytes), marking a replay with
``Idempotent-Replayed: true``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Response

from ..services.idempotency import StoredResponse

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Idempotency key (8–128 characters); may be sent in the body instead.",
    ),
]


def as_response(result: StoredResponse) -> Response:
    headers = {"idempotent-replayed": "true"} if result.replayed else {}
    return Response(content=result.body, status_code=result.status, media_type="application/json", headers=headers)
