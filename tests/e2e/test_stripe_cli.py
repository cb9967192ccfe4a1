"""``modelfaucet stripe simulate`` and ``modelfaucet stripe sync`` as an operator runs them
(SPEC §20): the offline provider, a lost webhook found by the sync, signed webhooks
delivered to the running API, and the local-target rule."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelfaucet.adapters.stripe.checkout import CheckoutRequest
from modelfaucet.adapters.stripe.offline import OfflineStripe
from modelfaucet.config import Settings
from modelfaucet.services.checkout import CheckoutCreated
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.seed import SeedResult
from tests.conftest import LiveServer, start_live_server
from tests.stripe_support import WEBHOOK_SECRET, balance_of, pending_topup, session_user, topup_status

TEN_USD = 1_000_000_000
FIVE_USD = 500_000_000


def run_cli(args: list[str], db_url: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MODELFAUCET_", "STRIPE_", "ADMIN_"))}
    environment.update({"DATABASE_URL": db_url, **env})
    return subprocess.run(
        [sys.executable, "-m", "modelfaucet", "stripe", *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def topup(ctx: ServiceContext, seeded: SeedResult) -> CheckoutCreated:
    return pending_topup(ctx, session_user(ctx, seeded), FIVE_USD)


def test_a_lost_webhook_simulated_offline_is_found_and_credited_by_stripe_sync(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated, db_url: str, tmp_path: Path
) -> None:
    session = topup.checkout_session_id
    lost = run_cli(["simulate", "complete", session, "--no-webhook"], db_url, tmp_path)
    assert lost.returncode == 0, lost.stderr
    assert "webhook not sent" in lost.stdout

    dry = run_cli(["sync", "--dry-run"], db_url, tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "dry run: nothing written" in dry.stdout
    [line] = [line for line in dry.stdout.splitlines() if line.startswith(session)]
    assert line.split()[2:5] == ["credited_now", "paid", "pending"]
    assert topup_status(ctx, session) == "pending"

    synced = run_cli(["sync"], db_url, tmp_path)
    assert synced.returncode == 0, synced.stderr
    assert "summary: credited_now 1" in synced.stdout
    assert balance_of(ctx, seeded.end_user_wallet_id) == TEN_USD + FIVE_USD

    again = run_cli(["sync", "--json"], db_url, tmp_path)
    assert again.returncode == 0
    assert '"credited_now": 0' in again.stdout and '"ok": 1' in again.stdout
    assert balance_of(ctx, seeded.end_user_wallet_id) == TEN_USD + FIVE_USD


def test_sync_exits_1_when_a_session_is_flagged(
    ctx: ServiceContext, seeded: SeedResult, db_url: str, tmp_path: Path
) -> None:
    stranger = OfflineStripe(ctx.db, ctx.clock).create_checkout_session(
        CheckoutRequest(700, "usd", "https://a.example/ok", "https://a.example/no", "credits", {}, "w", "key-cli")
    )

    result = run_cli(["sync"], db_url, tmp_path)

    assert result.returncode == 1
    assert "unknown_locally" in result.stdout
    assert "1 flagged" in result.stderr
    assert stranger.id in result.stdout


@pytest.fixture
def signed_server(settings: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    server = start_live_server(settings, tmp_path, {"STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET})
    yield server
    server.stop()


def test_simulate_delivers_signed_webhooks_that_credit_refund_and_dispute(
    *,
    ctx: ServiceContext,
    seeded: SeedResult,
    topup: CheckoutCreated,
    signed_server: LiveServer,
    db_url: str,
    tmp_path: Path,
) -> None:
    target = {"MODELFAUCET_API_BASE_URL": signed_server.base_url, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    session = topup.checkout_session_id

    paid = run_cli(["simulate", "complete", session], db_url, tmp_path, **target)
    refund = run_cli(["simulate", "refund", session, "--amount-cents", "200"], db_url, tmp_path, **target)
    dispute = run_cli(["simulate", "dispute", session, "--amount-cents", "300"], db_url, tmp_path, **target)
    won = run_cli(["simulate", "dispute-won", session], db_url, tmp_path, **target)

    for result, outcome in [
        (paid, "credited"),
        (refund, "refund_posted"),
        (dispute, "dispute_debited"),
        (won, "dispute_reinstated"),
    ]:
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"webhook delivered: HTTP 200, outcome {outcome}" in result.stdout
    assert balance_of(ctx, seeded.end_user_wallet_id) == TEN_USD + FIVE_USD - 200_000_000

    unsigned = run_cli(
        ["simulate", "refund", session], db_url, tmp_path, MODELFAUCET_API_BASE_URL=signed_server.base_url
    )
    assert unsigned.returncode == 1
    assert "webhook refused: HTTP 400" in unsigned.stderr


def test_simulate_refuses_a_remote_target_before_changing_anything(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated, db_url: str, tmp_path: Path
) -> None:
    result = run_cli(
        ["simulate", "complete", topup.checkout_session_id, "--api-base-url", "http://8.8.8.8:3001"], db_url, tmp_path
    )

    assert result.returncode == 2
    assert "not a local" in result.stderr
    again = run_cli(["simulate", "complete", topup.checkout_session_id, "--no-webhook"], db_url, tmp_path)
    assert again.returncode == 0, "the session was still open: nothing had changed"


def test_simulate_refuses_what_stripe_would_not_allow(
    ctx: ServiceContext, seeded: SeedResult, topup: CheckoutCreated, db_url: str, tmp_path: Path
) -> None:
    refund_unpaid = run_cli(["simulate", "refund", topup.checkout_session_id, "--no-webhook"], db_url, tmp_path)
    unknown = run_cli(["simulate", "complete", "cs_test_nobody", "--no-webhook"], db_url, tmp_path)
    with_key = run_cli(
        ["simulate", "complete", topup.checkout_session_id, "--no-webhook"],
        db_url,
        tmp_path,
        STRIPE_SECRET_KEY="sk_test_not_offline_0123456789",
    )

    assert (refund_unpaid.returncode, unknown.returncode, with_key.returncode) == (2, 2, 2)
    assert "only a paid session can be refunded" in refund_unpaid.stderr
    assert "no such checkout session" in unknown.stderr
    assert "unset STRIPE_SECRET_KEY" in with_key.stderr
