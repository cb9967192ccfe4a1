"""Stripe webhook signatures: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]``.

The signed payload is ``"{t}.{raw body}"`` over the exact request bytes, HMAC-SHA256 with
the endpoint secret. Any ``v1`` value may match (Stripe sends one per active secret while
a secret is being rolled), and so may any of several configured secrets (a comma
separated ``STRIPE_WEBHOOK_SECRET``, for our side of a rotation). The timestamp must be
within the tolerance both ways: an old one is a replay, a future one a forged clock.

Hand-rolled on purpose (the library's helper only checks stale timestamps and re-encodes
the body as text); this is ~30 lines and checks exactly what the contract says.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

SCHEME = "v1"
# Only ASCII spaces and tabs pad a header item or a setting: "v1=<hex>\u00a0" is not <hex>.
_BLANKS = " \t"


class SignatureError(Exception):
    """The request is not provably from Stripe; the message says why (safe to show)."""


def compute(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value Stripe would send for ``payload``."""
    return f"t={timestamp},{SCHEME}={compute(payload, secret, timestamp)}"


def secrets_from_setting(value: str | None) -> list[str]:
    """The configured secrets: ``STRIPE_WEBHOOK_SECRET`` may list several, comma separated."""
    if not value:
        return []
    return [item.strip(_BLANKS) for item in value.split(",") if item.strip(_BLANKS)]


def verify(payload: bytes, header: str | None, secrets: Sequence[str], *, now: int, tolerance_seconds: int) -> int:
    """Return the signed timestamp, or raise :class:`SignatureError`."""
    if not secrets:
        raise SignatureError("No webhook secret is configured.")
    if not header:
        raise SignatureError("The Stripe-Signature header is missing.")
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip(_BLANKS).partition("=")
        if not sep:
            continue
        if key == "t":
            # ASCII digits only: "²".isdigit() is true and int("²") fails; "١٢" would read as 12.
            if not (value.isascii() and value.isdigit()) or len(value) > 12:
                raise SignatureError("The Stripe-Signature timestamp is malformed.")
            timestamp = int(value)
        elif key == SCHEME:
            candidates.append(value)
    if timestamp is None:
        raise SignatureError("The Stripe-Signature header has no timestamp.")
    if not candidates:
        raise SignatureError("The Stripe-Signature header has no v1 signature.")
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureError("The Stripe-Signature timestamp is outside the tolerance.")
    matched = False
    for secret in secrets:
        expected = compute(payload, secret, timestamp).encode()
        for candidate in candidates:
            # Keep comparing after a match so timing says nothing about which one matched.
            matched |= hmac.compare_digest(expected, candidate.encode())
    if not matched:
        raise SignatureError("No Stripe-Signature v1 value matches the payload.")
    return timestamp
