"""/metrics after a scripted flow: exact counter values, nothing for what rolled back, holds
expired only when the expiry commits, reconciliation runs from any process (the CLI too),
and the shipped alert rules and dashboard reference only metrics the service exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import accounts, holds, ledger_postings
from modelfaucet.config import Settings
from modelfaucet.domain.reconciliation import RunSource
from modelfaucet.http.app import create_app
from modelfaucet.services.context import ServiceContext, utcnow
from modelfaucet.services.reconcile import last_run
from modelfaucet.services.seed import SeedResult
from tests.conftest import ADMIN_TOKEN, GATEWAY_TOKEN, with_settings
from tests.stripe_support import WEBHOOK_SECRET, event_bytes, pending_topup, session_user, signature_for

from .test_usage_http import body

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "modelfaucet.json"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GATEWAY = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


HOLDS = "/v1/usage/holds"


class Clock:
    """The service's clock, moved by hand to let holds expire (starts at the real time, so
    Stripe signatures made now stay within their tolerance)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def watched(database: Database, settings: Settings, clock: Clock) -> Iterator[TestClient]:
    configured = with_settings(settings, stripe_webhook_secret=WEBHOOK_SECRET)
    app = create_app(configured, db=database, clock=clock, hold_sweep_seconds=3600)  # no sweep unless a test asks
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def credits_by_reason(database: Database) -> dict[str, tuple[int, int]]:
    """reason → (postings, sum of the positive amounts), read from the ledger itself."""
    with database.engine.connect() as connection:
        rows = connection.execute(select(ledger_postings.c.reason, ledger_postings.c.amount_units)).all()
    found: dict[str, tuple[int, int]] = {}
    for reason, amount in rows:
        count, units = found.get(reason, (0, 0))
        found[reason] = (count + 1, units + max(amount, 0))
    return found


def post_usage(client: TestClient, request_id: str, **changes: object) -> int:
    return client.post("/v1/usage/events", json=body(request_id, **changes), headers=GATEWAY).status_code


def hold_body(request_id: str, amount_usd: str = "1.00000000", ttl_seconds: int = 300) -> dict[str, object]:
    """A hold for the same user and feature as :func:`body`'s event with this request id."""
    event = body(request_id)
    hold = {key: event[key] for key in ("request_id", "public_app_id", "external_user_id", "feature_key")}
    return {**hold, "amount_usd": amount_usd, "ttl_seconds": ttl_seconds}


def place_hold(client: TestClient, request_id: str, amount_usd: str = "1.00000000", ttl_seconds: int = 300) -> str:
    placed = client.post(HOLDS, json=hold_body(request_id, amount_usd, ttl_seconds), headers=GATEWAY)
    assert placed.status_code == 201, placed.text
    hold_id: str = placed.json()["hold_id"]
    return hold_id


def holds_by_status(database: Database) -> dict[str, int]:
    with database.engine.connect() as connection:
        rows = connection.execute(select(holds.c.status, func.count()).group_by(holds.c.status)).all()
    return {status: count for status, count in rows}


def signed_webhook(client: TestClient, payload: bytes) -> int:
    headers = {"Content-Type": "application/json", "Stripe-Signature": signature_for(payload)}
    return client.post("/v1/stripe/webhook", content=payload, headers=headers).status_code


def test_a_scripted_flow_shows_exact_counts_and_money_moved_equals_the_postings(
    watched: TestClient, ctx: ServiceContext, seeded: SeedResult, database: Database, clock: Clock
) -> None:
    before = credits_by_reason(database)  # the seed posted through a context nobody watches
    topup = pending_topup(ctx, session_user(ctx, seeded))
    assert signed_webhook(watched, event_bytes(session_id=topup.checkout_session_id)) == 200
    assert signed_webhook(watched, event_bytes(session_id=topup.checkout_session_id)) == 200  # Stripe retries
    unhandled = event_bytes(session_id="cs_any", event_id="evt_test_2", event_type="customer.created")
    assert signed_webhook(watched, unhandled) == 200  # stored, answered, ignored
    assert post_usage(watched, "m1") == 201
    assert post_usage(watched, "m1") == 200  # a duplicate
    assert post_usage(watched, "m2", external_user_id="nobody-with-a-wallet") == 402
    developer_wallet = seeded.developer_wallet_id
    adjustment = {"kind": "adjustment", "direction": "credit", "amount_usd": "3.00000000", "reason": "demo"}
    assert watched.post(f"/v1/admin/wallets/{developer_wallet}/adjustments", json=adjustment, headers=ADMIN).is_success
    [payout] = watched.post("/v1/admin/payouts/run-mock", json={"threshold_usd": "1"}, headers=ADMIN).json()["items"]
    assert watched.post(f"/v1/admin/payouts/{payout['id']}/approve", json={}, headers=ADMIN).status_code == 200
    # Holds: one captured by its event, one voided, one expired (lazily, by the next hold on
    # its wallet), one left open.
    place_hold(watched, "h-captured")
    assert post_usage(watched, "h-captured") == 201
    voided = place_hold(watched, "h-voided")
    assert watched.post(f"{HOLDS}/{voided}/void", headers=GATEWAY).status_code == 200
    place_hold(watched, "h-expires", ttl_seconds=60)
    clock.now += timedelta(seconds=61)
    place_hold(watched, "h-open")
    assert watched.get("/v1/admin/reconciliation/ledger", headers=ADMIN).status_code == 200

    samples = scrape(watched)
    usage = "modelfaucet_usage_events_total"
    assert value(samples, usage, outcome="recorded", route_mode="platform") == 2  # m1, h-captured
    assert value(samples, usage, outcome="duplicate", route_mode="platform") == 1
    assert value(samples, usage, outcome="rejected", route_mode="platform") == 1
    assert value(samples, "modelfaucet_usage_posting_batch_size_count") == 4
    assert value(samples, "modelfaucet_usage_posting_seconds_count") == 4
    assert value(samples, "modelfaucet_holds_open") == 1  # h-open
    assert value(samples, "modelfaucet_holds_expired_total") == 1  # h-expires
    assert holds_by_status(database) == {"captured": 1, "released": 1, "expired": 1, "held": 1}
    hook = "modelfaucet_stripe_webhooks_total"
    assert value(samples, hook, type="checkout.session.completed", outcome="processed") == 1
    assert value(samples, hook, type="checkout.session.completed", outcome="duplicate") == 1
    assert value(samples, hook, type="other", outcome="ignored") == 1
    assert value(samples, "modelfaucet_payouts", status="processing") == 1
    assert value(samples, "modelfaucet_payouts", status="paid") == 0
    assert value(samples, "modelfaucet_payout_oldest_open_seconds") >= 0
    assert value(samples, "modelfaucet_reconciliation_mismatches") == 0
    assert value(samples, "modelfaucet_reconciliation_last_run_timestamp_seconds") > 0
    run = last_run(ctx)
    assert run is not None and run.source is RunSource.API and run.mismatches == 0

    after = credits_by_reason(database)
    for reason in set(after) | set(before):
        count = after.get(reason, (0, 0))[0] - before.get(reason, (0, 0))[0]
        units = after.get(reason, (0, 0))[1] - before.get(reason, (0, 0))[1]
        assert value(samples, "modelfaucet_ledger_postings_total", reason=reason) == count, reason
        assert value(samples, "modelfaucet_money_moved_units_total", reason=reason) == units, reason
    assert value(samples, "modelfaucet_money_moved_units_total", reason="stripe_checkout_topup") == 500_000_000
    assert value(samples, "modelfaucet_money_moved_units_total", reason="wallet_adjustment") == 300_000_000


def test_a_rolled_back_request_changes_no_counter(watched: TestClient, ctx: ServiceContext, seeded: SeedResult) -> None:
    before = scrape(watched)
    # An event for an unknown checkout session: the stored event row is rolled back (404).
    assert signed_webhook(watched, event_bytes(session_id="cs_test_nobody")) == 404
    # A debit larger than the balance: the adjustment is refused and rolled back.
    debit = {"kind": "adjustment", "direction": "debit", "amount_usd": "1000.00000000", "reason": "too much"}
    refused = watched.post(f"/v1/admin/wallets/{seeded.end_user_wallet_id}/adjustments", json=debit, headers=ADMIN)
    assert refused.status_code in (402, 409), refused.text
    # A hold the wallet cannot cover, and a void of a hold that does not exist.
    assert watched.post(HOLDS, json=hold_body("h-too-big", "1000"), headers=GATEWAY).status_code == 402
    assert watched.post(f"{HOLDS}/00000000-0000-4000-8000-000000000000/void", headers=GATEWAY).status_code == 404
    after = scrape(watched)

    money = (
        "modelfaucet_usage_",
        "modelfaucet_ledger_",
        "modelfaucet_money_",
        "modelfaucet_stripe_",
        "modelfaucet_holds_",
    )
    changed = {key for key in after if key[0].startswith(money) and after[key] != before.get(key, 0.0)}
    assert changed == set()


def test_an_expiry_is_counted_only_when_its_unit_of_work_commits(
    watched: TestClient, seeded: SeedResult, database: Database, clock: Clock
) -> None:
    """Voiding a hold past its time is refused (``invalid_state``) and rolls back, so it
    counts whatever that request committed — the counter always equals the holds whose
    expiry is stored — and the next write to the wallet expires it for good."""
    late = place_hold(watched, "h-late", ttl_seconds=60)
    clock.now += timedelta(seconds=61)
    refused = watched.post(f"{HOLDS}/{late}/void", headers=GATEWAY)
    assert refused.status_code == 409, refused.text
    expired_stored = holds_by_status(database).get("expired", 0)
    assert value(scrape(watched), "modelfaucet_holds_expired_total") == expired_stored

    place_hold(watched, "h-next")  # locks the wallet: its overdue hold expires, committed
    samples = scrape(watched)
    assert holds_by_status(database) == {"expired": 1, "held": 1}
    assert value(samples, "modelfaucet_holds_expired_total") == 1
    assert value(samples, "modelfaucet_holds_open") == 1


def test_the_sweep_inside_the_service_counts_what_it_expires(
    database: Database, settings: Settings, seeded: SeedResult, clock: Clock
) -> None:
    app = create_app(settings, db=database, clock=clock, hold_sweep_seconds=0.1)
    with TestClient(app) as client:
        for name in ("s1", "s2", "s3"):
            place_hold(client, name, ttl_seconds=60)
        place_hold(client, "s-later", ttl_seconds=600)
        assert value(scrape(client), "modelfaucet_holds_open") == 4
        clock.now += timedelta(seconds=61)
        deadline = time.monotonic() + 10
        while value(samples := scrape(client), "modelfaucet_holds_expired_total") < 3:
            assert time.monotonic() < deadline, "the sweep expired nothing within 10 s"
            time.sleep(0.1)
        assert value(samples, "modelfaucet_holds_expired_total") == 3
        # The counter moves after the sweep commits; a scrape that read the gauge just before
        # that commit may still show 4, so the gauge is read by a scrape that starts after.
        assert value(scrape(client), "modelfaucet_holds_open") == 1
    assert holds_by_status(database) == {"expired": 3, "held": 1}


def reconcile_cli(db_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``modelfaucet reconcile --json`` as an operator runs it: another process."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MODELFAUCET_", "STRIPE_", "ADMIN_"))}
    return subprocess.run(
        [sys.executable, "-m", "modelfaucet", "reconcile", "--json"],
        env={**environment, "DATABASE_URL": db_url},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_cli_reconciliation_run_shows_in_the_service_metrics(
    watched: TestClient, ctx: ServiceContext, seeded: SeedResult, db_url: str, tmp_path: Path
) -> None:
    assert value(scrape(watched), "modelfaucet_reconciliation_last_run_timestamp_seconds") == 0
    before = time.time()
    clean = reconcile_cli(db_url, tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    samples = scrape(watched)
    assert value(samples, "modelfaucet_reconciliation_mismatches") == 0
    assert before - 1 <= value(samples, "modelfaucet_reconciliation_last_run_timestamp_seconds") <= time.time() + 1

    # Break the books behind the ledger's back: one wallet no longer matches its postings.
    with ctx.db.engine.begin() as connection:
        connection.execute(update(accounts).where(accounts.c.id == seeded.end_user_wallet_id).values(balance_units=1))
    broken = reconcile_cli(db_url, tmp_path)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    report = json.loads(broken.stdout)
    failing = sum(1 for check in report["checks"].values() if not check["ok"])
    assert report["summary"]["mismatch_count"] == 1
    samples = scrape(watched)
    assert value(samples, "modelfaucet_reconciliation_mismatches") == 1 + failing
    assert value(samples, "modelfaucet_reconciliation_last_run_timestamp_seconds") >= before
    run = last_run(ctx)
    assert run is not None and run.source is RunSource.CLI
    assert run.summary.startswith("1 wallet out of balance")


def test_metrics_still_answer_when_the_stored_gauges_cannot_be_read(
    watched: TestClient, seeded: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the database unreachable, /metrics still serves the HTTP counters (the 5xx alert
    needs them most then) and the stored gauges' last values."""
    place_hold(watched, "h-before")
    assert value(scrape(watched), "modelfaucet_holds_open") == 1

    def unreachable(_ctx: ServiceContext) -> None:
        raise ConnectionError("database down")

    monkeypatch.setattr("modelfaucet.http.routers.health.read_gauges", unreachable)
    samples = scrape(watched)
    assert value(samples, "modelfaucet_holds_open") == 1
    assert value(samples, "modelfaucet_http_requests_total", method="POST", route=HOLDS, status="201") == 1


def test_a_bad_signature_is_counted_as_a_signature_failure(watched: TestClient, seeded: SeedResult) -> None:
    payload = event_bytes(session_id="cs_test_x")
    headers = {"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00"}
    assert watched.post("/v1/stripe/webhook", content=payload, headers=headers).status_code == 400
    samples = scrape(watched)
    assert value(samples, "modelfaucet_stripe_webhooks_total", type="other", outcome="signature_failed") == 1


def test_every_route_is_labelled_by_its_template_including_the_documentation(watched: TestClient) -> None:
    for path in ("/openapi.json", "/docs", "/v1/admin/payouts/po_unknown", "/nowhere"):
        watched.get(path, headers=ADMIN)
    samples = scrape(watched)
    routes = {dict(labels).get("route") for name, labels in samples if name == "modelfaucet_http_requests_total"}
    assert {"/openapi.json", "/docs", "/v1/admin/payouts/{payout_id}", "unmatched"} <= routes
    assert "/nowhere" not in routes and "/v1/admin/payouts/po_unknown" not in routes


def test_each_route_of_the_app_is_counted_under_its_own_template(watched: TestClient) -> None:
    """Every operation the OpenAPI document lists, and the documentation itself, called with
    its parameters filled in, is counted under its template — never the path as sent."""
    paths = watched.get("/openapi.json").json()["paths"]
    calls = [(method.upper(), path) for path, operations in paths.items() for method in operations]
    calls += [("GET", "/docs"), ("GET", "/redoc"), ("HEAD", "/health")]
    assert len(calls) > 30
    for method, path in calls:
        watched.request(method, re.sub(r"\{[^}]+\}", "x", path))  # unauthenticated: nothing is written
    samples = scrape(watched)
    counted = {
        (dict(labels)["method"], dict(labels)["route"])
        for name, labels in samples
        if name == "modelfaucet_http_requests_total"
    }
    assert set(calls) | {("GET", "/openapi.json")} <= counted, sorted(set(calls) - counted)
    assert not any(route == "unmatched" for _, route in counted)


def test_an_unknown_method_is_counted_as_other_by_its_route_template(watched: TestClient) -> None:
    """Labels stay bounded whatever a client sends: the method too."""
    for method in ("BREW", "PROPFIND", "POST"):
        assert watched.request(method, "/health").status_code == 405
    samples = scrape(watched)
    requests = "modelfaucet_http_requests_total"
    assert value(samples, requests, method="other", route="/health", status="405") == 2
    assert value(samples, requests, method="POST", route="/health", status="405") == 1
    methods = {dict(labels).get("method") for name, labels in samples if name == requests}
    assert "BREW" not in methods and "PROPFIND" not in methods


def test_reconcile_every_seconds_runs_reconciliation_inside_the_service(
    database: Database, settings: Settings, ctx: ServiceContext, seeded: SeedResult
) -> None:
    configured = with_settings(settings, reconcile_every_seconds=1)
    with TestClient(create_app(configured, db=database)) as client:
        deadline = time.monotonic() + 10
        while value(scrape(client), "modelfaucet_reconciliation_last_run_timestamp_seconds") == 0:
            assert time.monotonic() < deadline, "no periodic reconciliation within 10 s"
            time.sleep(0.2)
        assert value(scrape(client), "modelfaucet_reconciliation_mismatches") == 0
    run = last_run(ctx)
    assert run is not None and run.source is RunSource.PERIODIC and run.summary == "ok"


def test_without_reconcile_every_seconds_nothing_reconciles_on_its_own(watched: TestClient) -> None:
    time.sleep(1.2)
    assert value(scrape(watched), "modelfaucet_reconciliation_last_run_timestamp_seconds") == 0


def _metric_names(expression: str) -> set[str]:
    return set(re.findall(r"\bmodelfaucet_[a-z0-9_]+", expression))


def test_the_alert_rules_and_the_dashboard_use_only_exported_metrics(watched: TestClient, seeded: SeedResult) -> None:
    assert post_usage(watched, "m9") == 201
    exported = {name for name, _ in scrape(watched)}
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    dashboard = json.loads(DASHBOARD.read_text())
    alerting = {name for rule in rules for name in _metric_names(rule["expr"])}
    shown = {name for panel in dashboard["panels"] for t in panel["targets"] for name in _metric_names(t["expr"])}
    used = alerting | shown
    assert {rule["alert"] for rule in rules} >= {
        "ModelFaucetReconciliationMismatch",
        "ModelFaucetReconciliationNotRun",
        "ModelFaucetHigh5xxRate",
        "ModelFaucetUsagePostingSlow",
        "ModelFaucetPayoutOpenTooLong",
        "ModelFaucetWebhookSignatureFailures",
    }
    assert used and used <= exported, sorted(used - exported)
    # The dashboard shows every money and operations family the issue lists.
    assert {
        "modelfaucet_usage_events_total",
        "modelfaucet_money_moved_units_total",
        "modelfaucet_usage_posting_batch_size_bucket",
        "modelfaucet_usage_posting_seconds_bucket",
        "modelfaucet_stripe_webhooks_total",
        "modelfaucet_payouts",
        "modelfaucet_payout_oldest_open_seconds",
        "modelfaucet_reconciliation_mismatches",
        "modelfaucet_reconciliation_last_run_timestamp_seconds",
        "modelfaucet_holds_open",
        "modelfaucet_holds_expired_total",
    } <= shown


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_promtool_accepts_the_alert_rules() -> None:
    subprocess.run(["promtool", "check", "rules", str(ALERTS)], check=True)
