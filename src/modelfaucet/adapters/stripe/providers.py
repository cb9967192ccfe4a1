"""Which Stripe the service talks to: the official library with a secret key, else offline.

Both answer the Checkout provider (:class:`.checkout.CheckoutProvider`) and the session
reader (:class:`.sessions.CheckoutSessions`) calls; the offline one also simulates what a
cardholder or Stripe does (:meth:`.offline.OfflineStripe.simulate`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ...config import Settings
from ..db.database import Database
from .checkout import CheckoutProvider, StripeLibraryProvider
from .offline import OfflineStripe
from .sessions import CheckoutSessions, StripeLibrarySessions


def offline_stripe(settings: Settings, db: Database, clock: Callable[[], datetime]) -> OfflineStripe | None:
    """The offline provider, or None when a secret key makes the service talk to Stripe."""
    return None if settings.stripe_secret_key else OfflineStripe(db, clock)


def provider_for(settings: Settings, db: Database, clock: Callable[[], datetime]) -> CheckoutProvider:
    if settings.stripe_secret_key:
        return StripeLibraryProvider(api_key=settings.stripe_secret_key, api_base=settings.stripe_api_base)
    return OfflineStripe(db, clock)


def sessions_for(settings: Settings, db: Database, clock: Callable[[], datetime]) -> CheckoutSessions:
    if settings.stripe_secret_key:
        return StripeLibrarySessions(api_key=settings.stripe_secret_key, api_base=settings.stripe_api_base)
    return OfflineStripe(db, clock)
