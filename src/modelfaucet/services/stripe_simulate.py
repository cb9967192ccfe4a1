"""simulate_stripe: make the offline test-mode Stripe do what a cardholder or Stripe would.

Pay a session, let it expire, refund it, dispute it, win or lose the dispute: the offline
provider's record changes as Stripe's would, and the event Stripe would send comes back
for the caller (``modelfaucet stripe simulate``) to deliver as a signed webhook — or to
keep, which is how a lost webhook is tested. Only the offline provider can be simulated:
with ``STRIPE_SECRET_KEY`` set, Stripe itself holds the sessions.
"""

from __future__ import annotations

from ..adapters.stripe.offline import SimulatedEvent, Simulation
from ..adapters.stripe.providers import offline_stripe
from ..domain.outcomes import InvalidState
from .context import ServiceContext


def simulate_stripe(
    ctx: ServiceContext, action: Simulation, checkout_session_id: str, *, amount_cents: int | None = None
) -> SimulatedEvent:
    offline = offline_stripe(ctx)
    if offline is None:
        raise InvalidState(
            "Simulation drives the offline test-mode provider; unset STRIPE_SECRET_KEY to use it.",
            details={"provider": "stripe"},
        )
    return offline.simulate(action, checkout_session_id, amount_cents=amount_cents)
