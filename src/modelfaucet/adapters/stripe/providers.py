"""Which Stripe the service talks to: the official library with a secret key, else offline.

Both answer the Checkout provider (:class:`.checkout.CheckoutProvider`) and the session
reader (:class:`.sessions.CheckoutSessions`) calls; the offline one also simulates what a
cardholder or Stripe does (:meth:`.offline.OfflineStripe.simulate`). The factories take
the service context as it is (its settings, database and clock): the offline provider
keeps its record of sessions in that database, so services never hand it a connection.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from ...config import Settings
from ..db.database import Database
from .checkout import CheckoutProvider, StripeLibraryProvider
from .offline import OfflineStripe
from .sessions import CheckoutSessions, StripeLibrarySessions


class StripeSetting(Protocol):
    """What choosing a Stripe needs (a :class:`~modelfaucet.services.context.ServiceContext`)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...


def offline_stripe(setting: StripeSetting) -> OfflineStripe | None:
    """The offline provider, or None when a secret key makes the service talk to Stripe."""
    return None if setting.settings.stripe_secret_key else OfflineStripe(setting.db, setting.clock)


def provider_for(setting: StripeSetting) -> CheckoutProvider:
    settings = setting.settings
    if settings.stripe_secret_key:
        return StripeLibraryProvider(api_key=settings.stripe_secret_key, api_base=settings.stripe_api_base)
    return OfflineStripe(setting.db, setting.clock)


def sessions_for(setting: StripeSetting) -> CheckoutSessions:
    settings = setting.settings
    if settings.stripe_secret_key:
        return StripeLibrarySessions(api_key=settings.stripe_secret_key, api_base=settings.stripe_api_base)
    return OfflineStripe(setting.db, setting.clock)
