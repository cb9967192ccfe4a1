"""The states of a stored idempotency key (see :mod:`modelfaucet.services.idempotency`)."""

from __future__ import annotations

from enum import StrEnum


class KeyState(StrEnum):
    IN_FLIGHT = "in_flight"  # claimed; the operation is running (or its process died)
    DONE = "done"  # the operation committed; its result is stored for replays
