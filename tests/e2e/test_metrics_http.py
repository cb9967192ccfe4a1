"""/metrics after a scripted flow: exact counter values, nothing for what rolled back, and
the shipped alert rules and dashboard reference only metrics the service exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import ledger_postings
from modelfaucet.config import Settings
from modelfaucet.http.app import create_app
from modelfaucet.services.context import ServiceContext
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


@pytest.fixture
def watched(database: Database, settings: Settings) -> Iterator[TestClient]:
    configured = with_settings(settings, stripe_webhook_secret=WEBHOOK_SECRET)
    with TestClient(create_app(configured, db=database), raise_server_exceptions=False) as c:
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


def signed_webhook(client: TestClient, payload: bytes) -> int:
    headers = {"Content-Type": "application/json", "Stripe-Signature": signature_for(payload)}
    return client.post("/v1/stripe/webhook", content=payload, headers=headers).status_code


def test_a_scripted_flow_shows_exact_counts_and_money_moved_equals_the_postings(
    watched: TestClient, ctx: ServiceContext, seeded: SeedResult, database: Database
) -> None:
    before = credits_by_reason(database)  # the seed posted through a context nobody watches
    topup = pending_topup(ctx, session_user(ctx, seeded))
    assert signed_webhook(watched, event_bytes(session_id=topup.checkout_session_id)) == 200
    assert post_usage(watched, "m1") == 201
    assert post_usage(watched, "m1") == 200  # a duplicate
    assert post_usage(watched, "m2", external_user_id="nobody-with-a-wallet") == 402
    developer_wallet = seeded.developer_wallet_id
    adjustment = {"kind": "adjustment", "direction": "credit", "amount_usd": "3.00000000", "reason": "demo"}
    assert watched.post(f"/v1/admin/wallets/{developer_wallet}/adjustments", json=adjustment, headers=ADMIN).is_success
    [payout] = watched.post("/v1/admin/payouts/run-mock", json={"threshold_usd": "1"}, headers=ADMIN).json()["items"]
    assert watched.post(f"/v1/admin/payouts/{payout['id']}/approve", json={}, headers=ADMIN).status_code == 200
    assert watched.get("/v1/admin/reconciliation/ledger", headers=ADMIN).status_code == 200

    samples = scrape(watched)
    usage = "modelfaucet_usage_events_total"
    assert value(samples, usage, outcome="recorded", route_mode="platform") == 1
    assert value(samples, usage, outcome="duplicate", route_mode="platform") == 1
    assert value(samples, usage, outcome="rejected", route_mode="platform") == 1
    assert value(samples, "modelfaucet_usage_posting_batch_size_count") == 3
    assert value(samples, "modelfaucet_usage_posting_seconds_count") == 3
    hook = "modelfaucet_stripe_webhooks_total"
    assert value(samples, hook, type="checkout.session.completed", outcome="processed") == 1
    assert value(samples, "modelfaucet_payouts", status="processing") == 1
    assert value(samples, "modelfaucet_payouts", status="paid") == 0
    assert value(samples, "modelfaucet_payout_oldest_open_seconds") >= 0
    assert value(samples, "modelfaucet_reconciliation_mismatches") == 0
    assert value(samples, "modelfaucet_reconciliation_last_run_timestamp_seconds") > 0

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
    after = scrape(watched)

    money = ("modelfaucet_usage_", "modelfaucet_ledger_", "modelfaucet_money_", "modelfaucet_stripe_")
    changed = {key for key in after if key[0].startswith(money) and after[key] != before.get(key, 0.0)}
    assert changed == set()


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


def test_reconcile_every_seconds_runs_reconciliation_inside_the_service(
    database: Database, settings: Settings, seeded: SeedResult
) -> None:
    configured = with_settings(settings, reconcile_every_seconds=1)
    with TestClient(create_app(configured, db=database)) as client:
        deadline = time.monotonic() + 10
        while value(scrape(client), "modelfaucet_reconciliation_last_run_timestamp_seconds") == 0:
            assert time.monotonic() < deadline, "no periodic reconciliation within 10 s"
            time.sleep(0.2)
        assert value(scrape(client), "modelfaucet_reconciliation_mismatches") == 0


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
    used = {name for rule in rules for name in _metric_names(rule["expr"])}
    used |= {name for panel in dashboard["panels"] for t in panel["targets"] for name in _metric_names(t["expr"])}
    assert {rule["alert"] for rule in rules} >= {
        "ModelFaucetReconciliationMismatch",
        "ModelFaucetReconciliationNotRun",
        "ModelFaucetHigh5xxRate",
        "ModelFaucetUsagePostingSlow",
        "ModelFaucetPayoutOpenTooLong",
        "ModelFaucetWebhookSignatureFailures",
    }
    assert used and used <= exported, sorted(used - exported)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_promtool_accepts_the_alert_rules() -> None:
    subprocess.run(["promtool", "check", "rules", str(ALERTS)], check=True)
