"""What Stripe holds: the Checkout sessions of a window, read through the official library.

``list_sessions`` walks every page of ``GET /v1/checkout/sessions?created[gte]=…`` with the
library's auto-paging; ``retrieve_session`` reads one session (None when Stripe answers 404),
for a local top-up that the listing did not return. The offline provider
(:mod:`.offline`) answers the same two calls from its own record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import stripe

from ...domain.outcomes import UpstreamError
from .client import stripe_client

log = logging.getLogger("modelfaucet.stripe")

PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class StripeSession:
    """A Checkout session as Stripe reports it."""

    id: str
    status: str  # open | complete | expired
    payment_status: str  # paid | unpaid | no_payment_required
    amount_total: int | None  # cents
    currency: str | None
    payment_intent_id: str | None
    created: datetime


class CheckoutSessions(Protocol):
    name: str

    def list_sessions(self, *, created_since: datetime) -> Iterator[StripeSession]:
        """Every session created at or after ``created_since``, all pages."""
        ...

    def retrieve_session(self, session_id: str) -> StripeSession | None: ...


class StripeLibrarySessions:
    """Reads Checkout sessions through the official ``stripe`` library (test keys only)."""

    name = "stripe"

    def __init__(self, *, api_key: str, api_base: str | None) -> None:
        self._client = stripe_client(api_key=api_key, api_base=api_base)

    def list_sessions(self, *, created_since: datetime) -> Iterator[StripeSession]:
        params: dict[str, Any] = {"created": {"gte": int(created_since.timestamp())}, "limit": PAGE_SIZE}
        try:
            for session in self._client.v1.checkout.sessions.list(params).auto_paging_iter():  # type: ignore[arg-type]
                yield session_of(session)
        except stripe.StripeError as exc:
            raise _upstream(exc, "list the checkout sessions") from None

    def retrieve_session(self, session_id: str) -> StripeSession | None:
        try:
            return session_of(self._client.v1.checkout.sessions.retrieve(session_id))
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise _upstream(exc, "read a checkout session") from None
        except stripe.StripeError as exc:
            raise _upstream(exc, "read a checkout session") from None


def session_of(session: Any) -> StripeSession:
    """A library object (or a plain mapping of the same fields) as a :class:`StripeSession`."""

    def field(name: str) -> Any:
        return session.get(name) if hasattr(session, "get") else getattr(session, name, None)

    session_id = field("id")
    if not isinstance(session_id, str) or not session_id.startswith("cs_"):
        raise UpstreamError(
            "Stripe listed a checkout session without a valid id.",
            details={"provider": "stripe", "upstream_status": 200},
        )
    intent = field("payment_intent")
    if intent is not None and not isinstance(intent, str):  # expanded into an object
        intent = getattr(intent, "id", None) or (intent.get("id") if hasattr(intent, "get") else None)
    amount = field("amount_total")
    created = field("created")
    return StripeSession(
        id=session_id,
        status=str(field("status") or ""),
        payment_status=str(field("payment_status") or ""),
        amount_total=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        currency=field("currency") if isinstance(field("currency"), str) else None,
        payment_intent_id=intent if isinstance(intent, str) else None,
        created=datetime.fromtimestamp(created if isinstance(created, int) else 0, UTC),
    )


def _upstream(exc: stripe.StripeError, what: str) -> UpstreamError:
    # Name the status, never the body: it may echo request data.
    log.warning("stripe could not %s: %s (status %s)", what, type(exc).__name__, exc.http_status)
    return UpstreamError(
        f"Stripe could not {what}; nothing was changed. Try again later.",
        details={"provider": "stripe", "upstream_status": exc.http_status},
    )
