"""``modelfaucet stripe replay-webhook``: send a signed ``checkout.session.completed`` event.

An operator tool with the environment contract of the seed's ``pnpm stripe:webhook:replay``
(SPEC §6); a command-line flag overrides its variable:

=============================  ==========================  ==============================
variable                       flag                        default
=============================  ==========================  ==============================
MODELFAUCET_API_BASE_URL       --api-base-url              http://127.0.0.1:3001
STRIPE_WEBHOOK_SECRET          --webhook-secret            unset: the event is unsigned
STRIPE_CHECKOUT_SESSION_ID     --checkout-session-id       cs_test_replay
STRIPE_AMOUNT_CENTS            --amount-cents              500 (a positive integer)
STRIPE_EVENT_ID                --event-id                  evt_replay_<unix ms>
ALLOW_REMOTE_WEBHOOK_REPLAY=1  --allow-remote              local targets only
REQUIRE_WEBHOOK_CREDIT=1       --require-credit            a 404 counts as a pass
=============================  ==========================  ==============================

The base URL follows the service's one URL rule (``netpolicy.parse_http_url``). Its host is
resolved **once**; the target is local when every address is loopback or private, and that
is decided before anything is sent. The request then goes to a checked address itself (with
the URL's ``Host`` header and TLS name, as the egress client does), so a resolver that
answers differently the second time cannot redirect it. Exit codes: 0 passed, 1 the API
refused or could not be reached (or no credit when one is required), 2 bad arguments or a
refused remote target.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any

import httpx
import typer

from ..adapters import netpolicy
from ..adapters.egress import CheckedUrl, Resolver, resolve_once
from ..adapters.stripe.signature import sign
from ..domain.money import cents_to_units, format_usd

DEFAULT_API_BASE_URL = "http://127.0.0.1:3001"
DEFAULT_CHECKOUT_SESSION_ID = "cs_test_replay"
DEFAULT_AMOUNT_CENTS = 500
MAX_AMOUNT_DIGITS = 12
BASE_URL_VARIABLE = "MODELFAUCET_API_BASE_URL"
WEBHOOK_PATH = "/v1/stripe/webhook"
NOT_FOUND_MESSAGE = "Stripe checkout top-up was not found."
TIMEOUT_SECONDS = 15.0

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

stripe_app = typer.Typer(help="Stripe test-mode tools.", no_args_is_help=True)


@dataclass(frozen=True)
class ReplayOptions:
    api_base_url: str
    webhook_secret: str | None
    checkout_session_id: str
    amount_cents: int
    event_id: str
    allow_remote: bool
    require_credit: bool


class ReplayUsageError(Exception):
    """Bad arguments or environment; nothing was sent."""


class TargetUnreachable(Exception):
    """The target's host name does not resolve; nothing was sent."""


def resolve_options(
    env: Mapping[str, str],
    *,
    api_base_url: str | None = None,
    webhook_secret: str | None = None,
    checkout_session_id: str | None = None,
    amount_cents: str | None = None,
    event_id: str | None = None,
    allow_remote: bool = False,
    require_credit: bool = False,
) -> ReplayOptions:
    """Flags first, then the environment, then the defaults."""
    raw_amount = amount_cents if amount_cents is not None else env.get("STRIPE_AMOUNT_CENTS") or None
    cents = DEFAULT_AMOUNT_CENTS
    if raw_amount is not None:
        # ASCII digits only: str.isdigit() also passes "²" (int() then fails) and "١٢" (read as 12).
        if not (raw_amount.isascii() and raw_amount.isdigit()) or len(raw_amount) > MAX_AMOUNT_DIGITS:
            raise ReplayUsageError("STRIPE_AMOUNT_CENTS must be a positive integer number of cents (ASCII digits).")
        cents = int(raw_amount)
        if cents <= 0:
            raise ReplayUsageError("STRIPE_AMOUNT_CENTS must be a positive integer number of cents (ASCII digits).")
    session_id = checkout_session_id or env.get("STRIPE_CHECKOUT_SESSION_ID") or DEFAULT_CHECKOUT_SESSION_ID
    return ReplayOptions(
        api_base_url=(api_base_url or env.get("MODELFAUCET_API_BASE_URL") or DEFAULT_API_BASE_URL).rstrip("/"),
        webhook_secret=webhook_secret or env.get("STRIPE_WEBHOOK_SECRET") or None,
        checkout_session_id=session_id,
        amount_cents=cents,
        event_id=event_id or env.get("STRIPE_EVENT_ID") or f"evt_replay_{time.time_ns() // 1_000_000}",
        allow_remote=allow_remote or env.get("ALLOW_REMOTE_WEBHOOK_REPLAY") == "1",
        require_credit=require_credit or env.get("REQUIRE_WEBHOOK_CREDIT") == "1",
    )


def completed_event(options: ReplayOptions, *, created: int) -> bytes:
    """A Stripe-shaped ``checkout.session.completed`` event for a paid USD session."""
    event = {
        "id": options.event_id,
        "object": "event",
        "created": created,
        "livemode": False,
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": options.checkout_session_id,
                "object": "checkout.session",
                "mode": "payment",
                "status": "complete",
                "payment_status": "paid",
                "currency": "usd",
                "amount_subtotal": options.amount_cents,
                "amount_total": options.amount_cents,
                "livemode": False,
            }
        },
    }
    return json.dumps(event, separators=(",", ":")).encode()


def check_target(options: ReplayOptions, *, resolver: Resolver = netpolicy.resolve) -> CheckedUrl:
    """The webhook URL and the addresses it may be sent to, resolved once.

    :class:`ReplayUsageError` for a malformed base URL or a refused remote target,
    :class:`TargetUnreachable` for a remote one that does not resolve; nothing sent either way.
    """
    if "?" in options.api_base_url or "#" in options.api_base_url:
        raise ReplayUsageError(f"{BASE_URL_VARIABLE} must have no query or fragment, such as {DEFAULT_API_BASE_URL}.")
    try:
        netpolicy.parse_http_url(options.api_base_url, field=BASE_URL_VARIABLE)
        webhook = netpolicy.parse_http_url(f"{options.api_base_url}{WEBHOOK_PATH}", field=BASE_URL_VARIABLE)
    except netpolicy.InvalidUrl as exc:
        raise ReplayUsageError(f"{exc.message} Example: {DEFAULT_API_BASE_URL}") from None
    addresses = resolve_once(webhook, resolver)
    if not options.allow_remote and not netpolicy.is_local(addresses):
        raise ReplayUsageError(
            f"refused: {webhook.host} is not a local (loopback/private) target; "
            "set ALLOW_REMOTE_WEBHOOK_REPLAY=1 to replay to a remote API. Nothing was sent."
        )
    if not addresses:
        raise TargetUnreachable(f"{webhook.host} does not resolve")
    return CheckedUrl(parsed=webhook, address=addresses[0], addresses=addresses)


def replay(
    options: ReplayOptions, *, client: httpx.Client | None = None, resolver: Resolver = netpolicy.resolve
) -> tuple[int, str]:
    """Send the event; return (exit code, one-line outcome)."""
    try:
        target = check_target(options, resolver=resolver)
    except TargetUnreachable as exc:
        return EXIT_FAILED, f"failed: could not reach {options.api_base_url}{WEBHOOK_PATH}: {exc}"
    url = target.url
    now = int(time.time())
    payload = completed_event(options, created=now)
    headers = {"Content-Type": "application/json", "User-Agent": "modelfaucet-replay-webhook"}
    if options.webhook_secret:
        headers["Stripe-Signature"] = sign(payload, options.webhook_secret, now)
    signed = "signed" if options.webhook_secret else "unsigned"
    amount = format_usd(cents_to_units(options.amount_cents))
    # No proxies from the environment and no redirects: the checked target is the one reached.
    http = client or httpx.Client(timeout=TIMEOUT_SECONDS, trust_env=False, follow_redirects=False)
    try:
        response = _send_pinned(http, target, payload, headers)
    except httpx.HTTPError as exc:
        return EXIT_FAILED, f"failed: could not reach {url}: {type(exc).__name__}"
    finally:
        if client is None:
            http.close()

    body = _json(response)
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    message = str(error.get("message", "")) if error else ""
    what = f"{options.event_id} for {options.checkout_session_id} ({amount} USD, {signed})"
    if response.status_code == 404 and message == NOT_FOUND_MESSAGE:
        if options.require_credit:
            return (
                EXIT_FAILED,
                f"failed: no pending top-up for {options.checkout_session_id} "
                f"(HTTP 404: {message}) and REQUIRE_WEBHOOK_CREDIT=1",
            )
        return (
            EXIT_OK,
            f"signature and routing check passed: {what} reached the API, which has no top-up "
            f"for this session (HTTP 404)",
        )
    if response.status_code != 200:
        code = str(error.get("code", "")) if error else ""
        detail = f"{code}: {message}" if code or message else response.text[:200]
        return EXIT_FAILED, f"failed: HTTP {response.status_code} {detail}".rstrip()
    outcome = str(body.get("outcome", "ignored" if body.get("ignored") else "received"))
    credited = outcome in ("credited", "already_credited")
    if options.require_credit and not credited:
        return EXIT_FAILED, f"failed: {what} was accepted but not credited (outcome {outcome})"
    if outcome == "credited" and not body.get("duplicate"):
        return EXIT_OK, f"credited: {what} credited wallet top-up {body.get('topup_id')} (HTTP 200)"
    return EXIT_OK, f"accepted: {what} — outcome {outcome}{' (duplicate event)' if body.get('duplicate') else ''}"


def _send_pinned(http: httpx.Client, target: CheckedUrl, payload: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST to the checked addresses in turn (never to a fresh DNS answer) until one connects."""
    for address in target.addresses[:-1]:
        try:
            return http.send(
                replace(target, address=address).build_request(http, "POST", headers=headers, content=payload)
            )
        except httpx.ConnectError:
            continue  # nothing was sent: try the next checked address
    last = replace(target, address=target.addresses[-1])
    return http.send(last.build_request(http, "POST", headers=headers, content=payload))


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@stripe_app.command("replay-webhook")
def replay_webhook(
    *,
    api_base_url: Annotated[
        str | None, typer.Option(help="API base URL (env MODELFAUCET_API_BASE_URL, default http://127.0.0.1:3001)")
    ] = None,
    webhook_secret: Annotated[
        str | None, typer.Option(help="Signing secret (env STRIPE_WEBHOOK_SECRET; unsigned if unset)")
    ] = None,
    checkout_session_id: Annotated[
        str | None, typer.Option(help="Checkout session id (env STRIPE_CHECKOUT_SESSION_ID, default cs_test_replay)")
    ] = None,
    amount_cents: Annotated[
        str | None, typer.Option(help="Amount in cents (env STRIPE_AMOUNT_CENTS, default 500)")
    ] = None,
    event_id: Annotated[
        str | None, typer.Option(help="Event id (env STRIPE_EVENT_ID, default evt_replay_<time>)")
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a non-local target (env ALLOW_REMOTE_WEBHOOK_REPLAY=1)")
    ] = False,
    require_credit: Annotated[
        bool, typer.Option("--require-credit", help="Fail unless a top-up is credited (env REQUIRE_WEBHOOK_CREDIT=1)")
    ] = False,
) -> None:
    """Replay a signed checkout.session.completed event to the local API (SPEC §6)."""
    try:
        options = resolve_options(
            os.environ,
            api_base_url=api_base_url,
            webhook_secret=webhook_secret,
            checkout_session_id=checkout_session_id,
            amount_cents=amount_cents,
            event_id=event_id,
            allow_remote=allow_remote,
            require_credit=require_credit,
        )
        code, line = replay(options)
    except ReplayUsageError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(line, err=code != EXIT_OK)
    raise typer.Exit(code)
