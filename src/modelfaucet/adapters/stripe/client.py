"""One way to build the official Stripe client: test keys, a bounded timeout, retries."""

from __future__ import annotations

from typing import Any

import stripe

REQUEST_TIMEOUT_SECONDS = 20


def stripe_client(*, api_key: str, api_base: str | None) -> stripe.StripeClient:
    """A client for ``api_key``, talking to ``api_base`` when set (the tests point it at a
    local fake). The library retries network failures itself, with the same idempotency key."""
    options: dict[str, Any] = {
        "http_client": stripe.new_default_http_client(timeout=REQUEST_TIMEOUT_SECONDS),
        "max_network_retries": 2,
    }
    if api_base:
        options["base_addresses"] = {"api": api_base.rstrip("/")}
    return stripe.StripeClient(api_key, **options)
