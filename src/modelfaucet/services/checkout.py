"""create_checkout_session: open a Stripe Checkout session for a top-up and record it pending.

Checks, in order: the amount (whole cents within Stripe's limits), the two URLs, the
``Idempotency-Key`` (the one key rule of :func:`~modelfaucet.services.idempotency.resolve_key`).

With a key, the request is claimed first (:mod:`modelfaucet.services.idempotency`, scoped to
the end user): the same key with the same amount and URLs answers the first session again
without asking Stripe; the same key with another amount or URL is ``idempotency_conflict``
naming the fields that differ.

Then Stripe is asked, outside any transaction (it may take seconds), and the pending
top-up, its audit entry and the stored answer are written in one short unit of work. If
Stripe refuses or is unreachable nothing is written here (the user gets a 502
``upstream_error``) and the key is free again. Stripe is always called with an idempotency
key derived from the client's, so a retry after a crash between the two steps gets the
same session back and finds its row: one session, one pending row, however often the
client retries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..adapters.netpolicy import parse_http_url
from ..adapters.stripe.checkout import CheckoutProvider, CheckoutRequest, CheckoutSession, new_idempotency_key
from ..adapters.stripe.providers import provider_for
from ..domain.audit import AuditEntry
from ..domain.identity import new_id
from ..domain.money import MoneyError, format_usd, parse_usd, units_to_cents
from ..domain.outcomes import IdempotencyConflict, InvalidRequest
from ..domain.topups import TOPUP_REFERENCE_TYPE, TopupStatus
from .context import ServiceContext
from .idempotency import Idempotent, IdempotentRequest, resolve_key, run_idempotent_after
from .repositories import NewTopup
from .sessions import SessionUser
from .unit_of_work import UnitOfWork

# Stripe's own limits for a USD Checkout payment.
STRIPE_MIN_CENTS = 50
STRIPE_MAX_CENTS = 99_999_999
CURRENCY = "usd"
PRODUCT_NAME = "ModelFaucet credits"

# The Stripe that opens sessions: by default the library with a secret key, else offline.
ProviderFactory = Callable[[ServiceContext], CheckoutProvider]


@dataclass(frozen=True, slots=True)
class CheckoutCommand:
    amount_units: int
    success_url: str
    cancel_url: str
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class CheckoutCreated:
    """The result: the Checkout session and the pending top-up recorded for it."""

    topup_id: str
    checkout_session_id: str
    checkout_url: str
    wallet_id: str
    amount_units: int
    status: TopupStatus

    def to_record(self) -> dict[str, Any]:
        # The stored form is the response body, so a replay renders the same bytes.
        return {
            "checkout_session_id": self.checkout_session_id,
            "checkout_url": self.checkout_url,
            "wallet_id": self.wallet_id,
            "amount_usd": format_usd(self.amount_units),
            "status": str(self.status),
            "topup_id": self.topup_id,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> CheckoutCreated:
        return cls(
            topup_id=record["topup_id"],
            checkout_session_id=record["checkout_session_id"],
            checkout_url=record["checkout_url"],
            wallet_id=record["wallet_id"],
            amount_units=parse_usd(record["amount_usd"]),
            status=TopupStatus(record["status"]),
        )


def create_checkout_session(
    ctx: ServiceContext,
    user: SessionUser,
    command: CheckoutCommand,
    *,
    provider_factory: ProviderFactory = provider_for,
) -> Idempotent[CheckoutCreated]:
    amount_cents = _whole_cents(command.amount_units)
    parse_http_url(command.success_url, field="success_url")
    parse_http_url(command.cancel_url, field="cancel_url")
    key = resolve_key(None, command.idempotency_key)
    provider = provider_factory(ctx)
    checkout = CheckoutRequest(
        amount_cents=amount_cents,
        currency=CURRENCY,
        success_url=command.success_url,
        cancel_url=command.cancel_url,
        product_name=PRODUCT_NAME,
        metadata={
            "wallet_id": user.account_id,
            "end_user_id": user.end_user_id,
            "amount_usd": format_usd(command.amount_units),
            "amount_cents": str(amount_cents),
        },
        client_reference_id=user.account_id,
        idempotency_key=_upstream_key(user, key),
    )
    return run_idempotent_after(
        ctx,
        _idempotent_request(user, command, key),
        lambda: provider.create_checkout_session(checkout),
        lambda uow, session: _record_pending(
            uow, session, user=user, command=command, amount_cents=amount_cents, provider_name=provider.name
        ),
        CheckoutCreated.from_record,
    )


def _idempotent_request(user: SessionUser, command: CheckoutCommand, key: str | None) -> IdempotentRequest | None:
    if key is None:
        return None
    return IdempotentRequest(
        # A client key is scoped to its end user, so two users can never collide on one.
        scope=f"checkout:{user.end_user_id}",
        key=key,
        summary={
            "amount_usd": format_usd(command.amount_units),
            "success_url": command.success_url,
            "cancel_url": command.cancel_url,
        },
    )


def _upstream_key(user: SessionUser, key: str | None) -> str:
    """Stripe's idempotency key: derived from the client's (scoped to the end user), so a
    retry reaches Stripe with the same one; a fresh one without a client key."""
    if key is None:
        return new_idempotency_key()
    scoped = hashlib.sha256(f"{user.end_user_id}:{key}".encode()).hexdigest()
    return f"mf_checkout_{scoped[:48]}"


def _record_pending(
    uow: UnitOfWork,
    session: CheckoutSession,
    *,
    user: SessionUser,
    command: CheckoutCommand,
    amount_cents: int,
    provider_name: str,
) -> CheckoutCreated:
    inserted = uow.topups.add_pending(
        NewTopup(
            id=new_id(),
            checkout_session_id=session.id,
            account_id=user.account_id,
            end_user_id=user.end_user_id,
            amount_units=command.amount_units,
            amount_cents=amount_cents,
            currency=CURRENCY,
            checkout_url=session.url,
        )
    )
    topup = uow.topups.by_session(session.id)
    if topup is None or topup.end_user_id != user.end_user_id or topup.amount_units != command.amount_units:
        # Stripe answered with a session already recorded for another request: a key reused
        # after its stored answer expired (24 h), with another amount.
        raise IdempotencyConflict("This idempotency key was already used for a different checkout request.")
    if inserted:
        uow.audit.add(
            AuditEntry(
                actor=f"end_user:{user.end_user_id}",
                action="stripe.checkout_created",
                resource_type=TOPUP_REFERENCE_TYPE,
                resource_id=topup.id,
                after_status=str(TopupStatus.PENDING),
                amount_units=command.amount_units,
                details={"checkout_session_id": session.id, "provider": provider_name},
            )
        )
    return CheckoutCreated(
        topup_id=topup.id,
        checkout_session_id=topup.checkout_session_id,
        checkout_url=topup.checkout_url,
        wallet_id=topup.account_id,
        amount_units=topup.amount_units,
        status=topup.status,
    )


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
