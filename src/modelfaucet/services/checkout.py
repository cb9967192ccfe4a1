"""create_checkout_session: open a Stripe Checkout session for a top-up and record it pending.

Order matters: Stripe is asked first, the pending top-up row is written after, in one
short transaction. If Stripe refuses or is unreachable nothing is written here (the user
gets a 502 ``upstream_error``). A retry with the same ``Idempotency-Key`` reaches Stripe
with the same idempotency key, gets the same session back, and finds the row already
written — one session, one pending row, however often the client retries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from ..adapters.db import audit
from ..adapters.db.tables import stripe_topups
from ..adapters.stripe.checkout import (
    CheckoutProvider,
    CheckoutRequest,
    new_idempotency_key,
    provider_for,
)
from ..config import Settings
from ..domain.identity import new_id
from ..domain.money import MoneyError, format_usd, units_to_cents
from ..domain.outcomes import IdempotencyConflict, InvalidRequest
from .context import ServiceContext
from .sessions import SessionUser
from .topups import topup_summary

# Stripe's own limits for a USD Checkout payment.
STRIPE_MIN_CENTS = 50
STRIPE_MAX_CENTS = 99_999_999
MAX_URL_LENGTH = 2048

ProviderFactory = Callable[[Settings], CheckoutProvider]


@dataclass(frozen=True)
class CheckoutCommand:
    amount_units: int
    success_url: str
    cancel_url: str
    idempotency_key: str | None = None


def create_checkout_session(
    ctx: ServiceContext,
    user: SessionUser,
    command: CheckoutCommand,
    *,
    provider_factory: ProviderFactory = provider_for,
) -> dict[str, Any]:
    amount_cents = _whole_cents(command.amount_units)
    _check_url(command.success_url, field="success_url")
    _check_url(command.cancel_url, field="cancel_url")
    if command.idempotency_key is not None and not 8 <= len(command.idempotency_key) <= 128:
        raise InvalidRequest("Idempotency-Key must be 8 to 128 characters.", details={"field": "idempotency_key"})

    # A client key is scoped to its end user so two users can never collide on one.
    if command.idempotency_key is not None:
        scoped = hashlib.sha256(f"{user.end_user_id}:{command.idempotency_key}".encode()).hexdigest()
        upstream_key = f"mf_checkout_{scoped[:48]}"
    else:
        upstream_key = new_idempotency_key()

    provider = provider_factory(ctx.settings)
    session = provider.create_checkout_session(
        CheckoutRequest(
            amount_cents=amount_cents,
            currency="usd",
            success_url=command.success_url,
            cancel_url=command.cancel_url,
            product_name="ModelFaucet credits",
            metadata={
                "wallet_id": user.account_id,
                "end_user_id": user.end_user_id,
                "amount_usd": format_usd(command.amount_units),
                "amount_cents": str(amount_cents),
            },
            client_reference_id=user.account_id,
            idempotency_key=upstream_key,
        )
    )

    now = ctx.clock()
    with ctx.db.transaction() as conn:
        inserted = conn.execute(
            ctx.db.insert(stripe_topups)
            .values(
                id=new_id(),
                checkout_session_id=session.id,
                account_id=user.account_id,
                end_user_id=user.end_user_id,
                amount_units=command.amount_units,
                amount_cents=amount_cents,
                currency="usd",
                status="pending",
                checkout_url=session.url,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["checkout_session_id"])
            .returning(stripe_topups.c.id)
        ).first()
        row = conn.execute(select(stripe_topups).where(stripe_topups.c.checkout_session_id == session.id)).one()
        if row.end_user_id != user.end_user_id or int(row.amount_units) != command.amount_units:
            raise IdempotencyConflict("This idempotency key was already used for a different checkout request.")
        if inserted is not None:
            audit.record(
                conn,
                now=now,
                actor=f"end_user:{user.end_user_id}",
                action="stripe.checkout_created",
                resource_type="stripe_topup",
                resource_id=row.id,
                after_status="pending",
                amount_units=command.amount_units,
                details={"checkout_session_id": session.id, "provider": provider.name},
            )
    return topup_summary(row)


def _whole_cents(amount_units: int) -> int:
    try:
        cents = units_to_cents(amount_units)
    except MoneyError as exc:
        raise InvalidRequest(str(exc), details={"field": "amount_usd"}) from None
    if cents < STRIPE_MIN_CENTS:
        raise InvalidRequest(
            f"amount_usd must be at least {format_usd(STRIPE_MIN_CENTS * 1_000_000)} (Stripe's minimum).",
            details={"field": "amount_usd"},
        )
    if cents > STRIPE_MAX_CENTS:
        raise InvalidRequest(
            f"amount_usd must be at most {format_usd(STRIPE_MAX_CENTS * 1_000_000)} (Stripe's maximum).",
            details={"field": "amount_usd"},
        )
    return cents


def _check_url(value: str, *, field: str) -> None:
    parts = urlsplit(value)
    if (
        len(value) > MAX_URL_LENGTH
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(ch.isspace() for ch in value)
    ):
        raise InvalidRequest(f"{field} must be an absolute http(s) URL.", details={"field": field})
