"""Named outcomes: the expected ways an operation is refused.

Services raise these; the HTTP layer maps each code to a status in one table
(``modelfaucet.http.errors``). A bug is never one of these.
"""

from __future__ import annotations

from typing import Any

# Messages of refusals that more than one operation gives.
APP_NOT_FOUND = "App was not found."
FEATURE_NOT_FOUND = "Feature was not found for this app."


class Refusal(Exception):
    """An expected, named refusal of an operation. Nothing was written."""

    code: str = "invalid_request"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


class InvalidRequest(Refusal):
    code = "invalid_request"


class InvalidSession(Refusal):
    code = "invalid_session"


class ExpiredSession(Refusal):
    code = "expired_session"


class InsufficientBalance(Refusal):
    code = "insufficient_balance"


class Forbidden(Refusal):
    code = "forbidden"


class NotFound(Refusal):
    code = "not_found"


class IdempotencyConflict(Refusal):
    code = "idempotency_conflict"


class InvalidState(Refusal):
    code = "invalid_state"


class RateLimited(Refusal):
    code = "rate_limited"


class UpstreamError(Refusal):
    """A dependency (Stripe) refused or failed; nothing was written here."""

    code = "upstream_error"


class ServiceUnavailable(Refusal):
    """The database cannot be reached right now."""

    code = "service_unavailable"


class LedgerInvariantViolation(Exception):
    """A ledger invariant would break. Always a bug: raised loudly, never mapped to a 4xx."""
