"""The in-memory books and Stripe events for the money-rule tests of refunds, disputes and sync
(no database): a wallet, a top-up credited by a webhook that names its PaymentIntent, and
Stripe-shaped charge and dispute events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from modelfaucet.config import Settings
from modelfaucet.domain.ledger import OwnerScope, SystemAccount
from modelfaucet.services.checkout import CheckoutCommand, CheckoutCreated, create_checkout_session
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.sessions import SessionUser
from modelfaucet.services.stripe_webhook import StripeEventOutcome, handle_stripe_webhook
from tests.fakes.memory import MemoryStore
from tests.fakes.stripe import RecordingCheckoutProvider

USD = 100_000_000
START = datetime(2030, 1, 1, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def memory_ctx(store: MemoryStore, clock: Clock | None = None) -> ServiceContext:
    return ServiceContext(
        db=None,  # type: ignore[arg-type]
        settings=Settings(database_url="sqlite://"),
        clock=clock or store.clock,
        units=store,
    )


def end_user(store: MemoryStore, opening_units: int = 0, owner: str = "end-user-1") -> SessionUser:
    wallet = store.open_account(OwnerScope.END_USER, owner, opening_units)
    return SessionUser("session-1", owner, "app-1", "app_pub_demo", wallet, None, datetime.max.replace(tzinfo=UTC))


def pending(ctx: ServiceContext, user: SessionUser, amount_units: int, *, key: str | None = None) -> CheckoutCreated:
    command = CheckoutCommand(amount_units, "https://app.example/ok", "https://app.example/cancel", key)
    stripe = RecordingCheckoutProvider()
    return create_checkout_session(ctx, user, command, provider_factory=lambda _: stripe).result


def deliver(ctx: ServiceContext, event_id: str, event_type: str, obj: dict[str, Any]) -> StripeEventOutcome:
    event = {"id": event_id, "object": "event", "type": event_type, "data": {"object": obj}}
    return handle_stripe_webhook(ctx, payload=json.dumps(event).encode(), signature_header=None)


def completed(topup: CheckoutCreated, *, payment_intent: str | None = "pi_1") -> dict[str, Any]:
    return {
        "id": topup.checkout_session_id,
        "object": "checkout.session",
        "amount_total": topup.amount_units // 1_000_000,
        "currency": "usd",
        "payment_status": "paid",
        "status": "complete",
        "payment_intent": payment_intent,
    }


def credited(ctx: ServiceContext, user: SessionUser, amount_units: int, *, payment_intent: str = "pi_1") -> str:
    """A top-up of ``amount_units`` credited by its webhook; its id."""
    topup = pending(ctx, user, amount_units, key=f"key-for-{payment_intent}")
    deliver(
        ctx, f"evt_paid_{payment_intent}", "checkout.session.completed", completed(topup, payment_intent=payment_intent)
    )
    return topup.topup_id


def charge(
    refunded_cents: int, *, charge_id: str = "ch_1", payment_intent: str = "pi_1", **changes: Any
) -> dict[str, Any]:
    return {
        "id": charge_id,
        "object": "charge",
        "amount_refunded": refunded_cents,
        "currency": "usd",
        "payment_intent": payment_intent,
        **changes,
    }


def dispute(
    amount_cents: int, status: str, *, dispute_id: str = "dp_1", payment_intent: str = "pi_1"
) -> dict[str, Any]:
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount_cents,
        "currency": "usd",
        "charge": "ch_1",
        "payment_intent": payment_intent,
        "status": status,
    }


def system_balance(store: MemoryStore, account: SystemAccount) -> int:
    return sum(
        a.balance_units
        for a in store.state.accounts.values()
        if a.owner_scope is OwnerScope.SYSTEM and a.owner_id == account
    )


def books_balance(store: MemoryStore) -> int:
    return sum(a.balance_units for a in store.state.accounts.values())
