"""``modelfaucet stripe replay-webhook`` end to end against a running server (SPEC §6)."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelfaucet.adapters.netpolicy import IPAddress
from modelfaucet.cli.replay import NOT_FOUND_MESSAGE, ReplayUsageError, check_target, replay, resolve_options
from modelfaucet.config import Settings
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.seed import seed_demo_data
from tests.conftest import ADMIN_TOKEN, APP_KEY_HEADERS, LiveServer, start_live_server
from tests.stripe_support import WEBHOOK_SECRET

REPLAY_VARS = (
    "MODELFAUCET_API_BASE_URL",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_CHECKOUT_SESSION_ID",
    "STRIPE_AMOUNT_CENTS",
    "STRIPE_EVENT_ID",
    "ALLOW_REMOTE_WEBHOOK_REPLAY",
    "REQUIRE_WEBHOOK_CREDIT",
)


@pytest.fixture
def signed_server(settings: Settings, ctx: ServiceContext, tmp_path: Path) -> Iterator[LiveServer]:
    seed_demo_data(ctx)
    server = start_live_server(settings, tmp_path, {"STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET})
    yield server
    server.stop()


def run_replay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in REPLAY_VARS}
    return subprocess.run(
        [sys.executable, "-m", "modelfaucet.cli", "stripe", "replay-webhook", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def pending_checkout(server: LiveServer, amount_usd: str = "5.00") -> dict[str, Any]:
    session = httpx.post(
        f"{server.base_url}/v1/sessions",
        headers=APP_KEY_HEADERS,
        json={"public_app_id": "app_pub_demo", "external_user_id": "demo-user-1"},
    ).json()
    response = httpx.post(
        f"{server.base_url}/v1/user/stripe/checkout-sessions",
        headers={"Authorization": f"Bearer {session['session_token']}"},
        json={"amount_usd": amount_usd, "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def admin_get(server: LiveServer, path: str) -> Any:
    return httpx.get(f"{server.base_url}{path}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()


def test_an_unknown_session_passes_the_signature_and_routing_check(signed_server: LiveServer) -> None:
    result = run_replay({"MODELFAUCET_API_BASE_URL": signed_server.base_url, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET})
    assert result.returncode == 0, result.stderr
    assert "signature and routing check passed" in result.stdout
    assert len(result.stdout.strip().splitlines()) == 1


def test_an_unknown_session_fails_when_a_credit_is_required(signed_server: LiveServer) -> None:
    result = run_replay(
        {
            "MODELFAUCET_API_BASE_URL": signed_server.base_url,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "REQUIRE_WEBHOOK_CREDIT": "1",
        }
    )
    assert result.returncode == 1
    assert "REQUIRE_WEBHOOK_CREDIT=1" in result.stderr
    assert "404" in result.stderr


def test_a_matching_pending_session_is_credited_and_reconciliation_is_balanced(signed_server: LiveServer) -> None:
    checkout = pending_checkout(signed_server, "5.00")
    env = {
        "MODELFAUCET_API_BASE_URL": signed_server.base_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_CHECKOUT_SESSION_ID": checkout["checkout_session_id"],
        "STRIPE_AMOUNT_CENTS": "500",
        "REQUIRE_WEBHOOK_CREDIT": "1",
    }
    result = run_replay(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("credited:")

    wallet = admin_get(signed_server, f"/v1/admin/wallets/{checkout['wallet_id']}")
    assert wallet["balance_usd"] == "15.00000000"
    report = admin_get(signed_server, "/v1/admin/reconciliation/ledger")
    assert report["summary"]["mismatch_count"] == 0
    assert report["checks"]["credited_topups_posted_once"]["ok"] is True

    again = run_replay(env)  # a new event id for the same session: accepted, never credited twice
    assert again.returncode == 0
    assert "already_credited" in again.stdout
    assert admin_get(signed_server, f"/v1/admin/wallets/{checkout['wallet_id']}")["balance_usd"] == "15.00000000"


def test_flags_override_the_environment(signed_server: LiveServer) -> None:
    checkout = pending_checkout(signed_server, "7.00")
    result = run_replay(
        {
            "MODELFAUCET_API_BASE_URL": "http://127.0.0.1:9",
            "STRIPE_WEBHOOK_SECRET": "whsec_wrong",
            "STRIPE_CHECKOUT_SESSION_ID": "cs_test_other",
        },
        "--api-base-url",
        signed_server.base_url,
        "--webhook-secret",
        WEBHOOK_SECRET,
        "--checkout-session-id",
        checkout["checkout_session_id"],
        "--amount-cents",
        "700",
        "--event-id",
        "evt_from_flag",
        "--require-credit",
    )
    assert result.returncode == 0, result.stderr
    assert "evt_from_flag" in result.stdout
    assert result.stdout.startswith("credited:")


@pytest.mark.parametrize(
    ("case", "changes", "status"),
    [
        ("a wrong secret", {"STRIPE_WEBHOOK_SECRET": "whsec_wrong"}, "HTTP 400"),
        ("no secret against a server that requires one", {"STRIPE_WEBHOOK_SECRET": ""}, "HTTP 400"),
        ("a mismatched amount", {"STRIPE_AMOUNT_CENTS": "501"}, "HTTP 400"),
    ],
)
def test_a_refused_replay_exits_non_zero_with_the_status_and_message(
    signed_server: LiveServer, case: str, changes: dict[str, str], status: str
) -> None:
    checkout = pending_checkout(signed_server)
    env = {
        "MODELFAUCET_API_BASE_URL": signed_server.base_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_CHECKOUT_SESSION_ID": checkout["checkout_session_id"],
        **changes,
    }
    result = run_replay(env)
    assert result.returncode == 1
    assert status in result.stderr
    assert "invalid_request" in result.stderr
    assert admin_get(signed_server, f"/v1/admin/wallets/{checkout['wallet_id']}")["balance_usd"] == "10.00000000"


@pytest.mark.parametrize("target", ["http://93.184.216.34:3001", "http://[2606:4700::1111]:3001"])
def test_a_remote_target_is_refused_before_sending_without_the_flag(target: str) -> None:
    result = run_replay({"MODELFAUCET_API_BASE_URL": target})
    assert result.returncode == 2
    assert "ALLOW_REMOTE_WEBHOOK_REPLAY=1" in result.stderr
    assert "Nothing was sent" in result.stderr


def test_a_refused_remote_target_never_reaches_the_network() -> None:
    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"sent to {request.url}")

    options = resolve_options({"MODELFAUCET_API_BASE_URL": "http://93.184.216.34"})
    with httpx.Client(transport=httpx.MockTransport(no_network)) as client, pytest.raises(ReplayUsageError):
        replay(options, client=client)


@pytest.mark.parametrize(
    ("env", "allowed"),
    [
        ({"MODELFAUCET_API_BASE_URL": "http://93.184.216.34"}, False),
        ({"MODELFAUCET_API_BASE_URL": "http://93.184.216.34", "ALLOW_REMOTE_WEBHOOK_REPLAY": "1"}, True),
        ({"MODELFAUCET_API_BASE_URL": "http://93.184.216.34", "ALLOW_REMOTE_WEBHOOK_REPLAY": "true"}, False),
        ({"MODELFAUCET_API_BASE_URL": "http://127.0.0.1:3001"}, True),
        ({"MODELFAUCET_API_BASE_URL": "http://localhost:3001"}, True),
        ({"MODELFAUCET_API_BASE_URL": "http://10.1.2.3:3001"}, True),
        ({"MODELFAUCET_API_BASE_URL": "http://192.168.0.10"}, True),
        ({}, True),
    ],
)
def test_only_local_targets_are_allowed_unless_remote_replay_is_enabled(env: dict[str, str], allowed: bool) -> None:
    options = resolve_options(env)
    if allowed:
        assert check_target(options).url.endswith("/v1/stripe/webhook")
    else:
        with pytest.raises(ReplayUsageError, match="ALLOW_REMOTE_WEBHOOK_REPLAY=1"):
            check_target(options)


def test_the_defaults_follow_the_seed_contract() -> None:
    options = resolve_options({})
    assert options.api_base_url == "http://127.0.0.1:3001"
    assert options.checkout_session_id == "cs_test_replay"
    assert options.amount_cents == 500
    assert options.event_id.startswith("evt_replay_")
    assert options.webhook_secret is None
    assert (options.allow_remote, options.require_credit) == (False, False)


@pytest.mark.parametrize("amount", ["0", "-5", "5.00", "abc", " 500", "²", "12²", "١٢", "１２", "0" * 13])
def test_a_non_positive_or_non_integer_amount_is_refused(amount: str) -> None:
    with pytest.raises(ReplayUsageError, match="STRIPE_AMOUNT_CENTS must be a positive integer"):
        resolve_options({"STRIPE_AMOUNT_CENTS": amount})


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"STRIPE_AMOUNT_CENTS": "²"}, "STRIPE_AMOUNT_CENTS"),
        ({"STRIPE_AMOUNT_CENTS": "١٢"}, "STRIPE_AMOUNT_CENTS"),
        ({"MODELFAUCET_API_BASE_URL": "http://0177.0.0.1"}, "MODELFAUCET_API_BASE_URL"),
        ({"MODELFAUCET_API_BASE_URL": "http://2130706433:3001"}, "MODELFAUCET_API_BASE_URL"),
        ({"MODELFAUCET_API_BASE_URL": "http://１２７.0.0.1:3001"}, "MODELFAUCET_API_BASE_URL"),
        ({"MODELFAUCET_API_BASE_URL": "http://127.0.0.1:３００１"}, "MODELFAUCET_API_BASE_URL"),
        ({"MODELFAUCET_API_BASE_URL": "http://127.0.0.1:²"}, "MODELFAUCET_API_BASE_URL"),
        ({"MODELFAUCET_API_BASE_URL": "http://[::1"}, "MODELFAUCET_API_BASE_URL"),
        ({"MODELFAUCET_API_BASE_URL": "ftp://127.0.0.1"}, "MODELFAUCET_API_BASE_URL"),
        ({"MODELFAUCET_API_BASE_URL": "http://127.0.0.1:3001?x=1"}, "MODELFAUCET_API_BASE_URL"),
        ({"MODELFAUCET_API_BASE_URL": "http://127.0.0.1:3001/" + "p" * 2030}, "MODELFAUCET_API_BASE_URL"),
    ],
)
def test_a_malformed_variable_is_a_usage_error_naming_it_with_no_traceback(env: dict[str, str], named: str) -> None:
    result = run_replay(env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


class _ChangingResolver:
    """A rebinding DNS server: the first answer is loopback, every later one is not."""

    def __init__(self, first: str, later: str) -> None:
        self.answers = [first, later]
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.calls += 1
        return [ipaddress.ip_address(self.answers[min(self.calls, 2) - 1])]


def test_the_request_goes_to_the_checked_address_with_the_host_name_kept() -> None:
    resolver = _ChangingResolver("127.0.0.1", "93.184.216.34")
    seen: list[httpx.Request] = []

    def capture(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"error": {"code": "not_found", "message": NOT_FOUND_MESSAGE}})

    options = resolve_options({"MODELFAUCET_API_BASE_URL": "http://replay.rebind.test:3001"})
    with httpx.Client(transport=httpx.MockTransport(capture)) as client:
        code, line = replay(options, client=client, resolver=resolver)
    assert code == 0, line
    assert resolver.calls == 1
    [request] = seen
    assert request.url.host == "127.0.0.1" and request.url.port == 3001
    assert request.url.path == "/v1/stripe/webhook"
    assert request.headers["host"] == "replay.rebind.test:3001"
    assert line.startswith("signature and routing check passed")


def test_a_rebinding_resolver_cannot_redirect_a_real_replay(
    signed_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The system resolver itself rebinds: the name answers 127.0.0.1 (the server) once, then
    # 127.0.0.2 (nothing listens there). A tool that resolves again to connect misses the server.
    port = int(signed_server.base_url.rsplit(":", 1)[1])
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["127.0.0.1"])

    def rebinding_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "replay.rebind.test":
            return real_getaddrinfo(next(answers, "127.0.0.2"), *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    options = resolve_options(
        {"MODELFAUCET_API_BASE_URL": f"http://replay.rebind.test:{port}", "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    )
    code, line = replay(options)
    assert code == 0, line
    assert "signature and routing check passed" in line


def test_a_remote_target_that_does_not_resolve_fails_without_sending() -> None:
    def nothing(host: str, port: int) -> list[IPAddress]:
        raise OSError("no such name")

    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"sent to {request.url}")

    options = resolve_options({"MODELFAUCET_API_BASE_URL": "http://gone.example", "ALLOW_REMOTE_WEBHOOK_REPLAY": "1"})
    with httpx.Client(transport=httpx.MockTransport(no_network)) as client:
        code, line = replay(options, client=client, resolver=nothing)
    assert code == 1 and "does not resolve" in line
