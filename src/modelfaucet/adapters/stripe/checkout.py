"""Checkout session providers: the official Stripe library, or the offline test-mode stand-in.

Both take the same request and return the session id and its URL. The library provider
talks to ``STRIPE_API_BASE`` when set (the tests point it at a local fake), always with an
idempotency key so a retried request never opens a second session. Without
``STRIPE_SECRET_KEY`` the offline provider (:mod:`.offline`) issues ``cs_test_…`` ids itself
and keeps a record of them, so the whole flow — checkout, webhook replay, credit, sync,
simulated refunds — works with no network. :mod:`.providers` picks one.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import stripe

from ...domain.outcomes import IdempotencyConflict, UpstreamError
from .client import stripe_client

log = logging.getLogger("modelfaucet.stripe")


@dataclass(frozen=True)
class CheckoutRequest:
    amount_cents: int
    currency: str
    success_url: str
    cancel_url: str
    product_name: str
    metadata: Mapping[str, str]
    client_reference_id: str
    idempotency_key: str


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


class CheckoutProvider(Protocol):
    name: str

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession: ...


class StripeLibraryProvider:
    """Creates Checkout sessions through the official ``stripe`` library (test keys only)."""

    name = "stripe"

    def __init__(self, *, api_key: str, api_base: str | None) -> None:
        self._client = stripe_client(api_key=api_key, api_base=api_base)

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency,
                        "unit_amount": request.amount_cents,
                        "product_data": {"name": request.product_name},
                    },
                }
            ],
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "client_reference_id": request.client_reference_id,
            "metadata": dict(request.metadata),
            "payment_intent_data": {"metadata": dict(request.metadata)},
        }
        try:
            session = self._client.v1.checkout.sessions.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": request.idempotency_key},
            )
        except stripe.IdempotencyError:
            raise IdempotencyConflict(
                "This idempotency key was already used for a different checkout request."
            ) from None
        except stripe.StripeError as exc:
            # Name the status, never the body: it may echo request data.
            status = exc.http_status
            log.warning("stripe checkout failed: %s (status %s)", type(exc).__name__, status)
            raise UpstreamError(
                "Stripe could not create the checkout session; nothing was charged. Try again later.",
                details={"provider": "stripe", "upstream_status": status},
            ) from None
        session_id = getattr(session, "id", None)
        url = getattr(session, "url", None)
        if not isinstance(session_id, str) or not session_id.startswith("cs_"):
            raise UpstreamError(
                "Stripe answered without a checkout session id.",
                details={"provider": "stripe", "upstream_status": 200},
            )
        return CheckoutSession(id=session_id, url=url if isinstance(url, str) else "")


def new_idempotency_key() -> str:
    return "mf_" + secrets.token_hex(16)
