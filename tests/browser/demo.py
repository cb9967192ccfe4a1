"""Demo data for the browser tests (and the screenshots): the seed, a week of usage, a
developer token, and a pending payout opened by a named operator.

``build_demo(database_url, settings)`` migrates the database and writes everything with
the services (so reconciliation holds), then returns what a test needs to sign in and find
things. Use it before the live server starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from modelfaucet.adapters.db import migrate
from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.engine import make_engine
from modelfaucet.config import Settings
from modelfaucet.domain.adjustments import AdjustmentKind, Direction
from modelfaucet.domain.money import UNITS_PER_USD
from modelfaucet.domain.rating import RouteMode
from modelfaucet.services.apply_adjustment import AdjustWallet, apply_adjustment
from modelfaucet.services.context import Actor, ServiceContext, utcnow
from modelfaucet.services.developer_tokens import issue_developer_token
from modelfaucet.services.record_usage import UsageEvent, record_usage
from modelfaucet.services.run_payouts import run_mock_payouts
from modelfaucet.services.seed import SeedResult, seed_demo_data

USAGE_DAYS = 7
# Two named operators (maker-checker: alice opens the payout, bob must approve it) and the admin.
OPERATOR_TOKENS = {
    "alice": "op-alice-token-0123456789abcdef-not-a-secret",
    "bob": "op-bob-token-0123456789abcdef-not-a-secret-x",
}


def operator_tokens_env() -> str:
    return ",".join(f"{name}={token}" for name, token in OPERATOR_TOKENS.items())


@dataclass(frozen=True)
class Demo:
    seed: SeedResult
    developer_token: str = field(repr=False)
    payout_id: str | None
    usage_events: int


def _ctx(database: Database, settings: Settings, clock: Callable[[], datetime] = utcnow) -> ServiceContext:
    return ServiceContext(db=database, settings=settings, clock=clock)


def build_demo(settings: Settings, *, open_payout: bool = True) -> Demo:
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    engine.dispose()
    database = Database.from_url(settings.database_url)
    try:
        ctx = _ctx(database, settings)
        seed = seed_demo_data(ctx)
        # Enough credit for a week of calls, from an operator's adjustment (so it has a source).
        apply_adjustment(
            ctx,
            AdjustWallet(
                seed.end_user_wallet_id,
                AdjustmentKind.ADJUSTMENT,
                Direction.CREDIT,
                500 * UNITS_PER_USD,
                "demo funding",
            ),
            actor=Actor("alice"),
        )
        # A week of calls, each day's at the same time of day as a moment just past: never
        # in the future (a statement or balance "as of now" must include every call, even
        # when the suite runs just after midnight UTC).
        today = utcnow().replace(microsecond=0) - timedelta(minutes=5)
        count = 0
        for back in range(USAGE_DAYS - 1, -1, -1):
            moment = today - timedelta(days=back)
            day_ctx = _ctx(database, settings, clock=lambda moment=moment: moment)
            for n in range(2 + (USAGE_DAYS - back) % 4):
                outcome = record_usage(
                    day_ctx,
                    UsageEvent(
                        request_id=f"demo-{moment.date().isoformat()}-{n}",
                        public_app_id=seed.public_app_id,
                        external_user_id=seed.external_user_id,
                        feature_key=seed.feature_key,
                        route_mode=RouteMode.PLATFORM,
                        provider="mock",
                        model="mock-small",
                        input_tokens=400_000 + 50_000 * n,
                        output_tokens=120_000,
                        cached_tokens=0,
                    ),
                )
                if not outcome.ok:
                    raise RuntimeError(f"demo usage refused: {outcome.error}")
                count += 1
        issued = issue_developer_token(ctx, Actor("alice"), developer_id=seed.developer_id, name="browser tests")
        # A bonus on top of the week's revenue share, so the payout run has something to pay.
        apply_adjustment(
            ctx,
            AdjustWallet(
                seed.developer_wallet_id,
                AdjustmentKind.ADJUSTMENT,
                Direction.CREDIT,
                25 * UNITS_PER_USD,
                "demo launch bonus",
            ),
            actor=Actor("alice"),
        )
        payout_id = None
        if open_payout:
            opened = run_mock_payouts(ctx, actor=Actor("alice"), threshold_units=UNITS_PER_USD)
            payout_id = opened[0].id if opened else None
        return Demo(seed, issued.token, payout_id, count)
    finally:
        database.dispose()


def now_utc() -> datetime:
    return datetime.now(UTC)
