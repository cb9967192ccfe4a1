"""The operator console over HTTP, on both databases: every page reads, every action goes
through the API's services and lands in the audit trail under the operator's name."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import adjustments, audit_log
from modelfaucet.config import Settings
from modelfaucet.domain.adjustments import AdjustmentKind, Direction
from modelfaucet.domain.money import UNITS_PER_USD
from modelfaucet.http.app import create_app
from modelfaucet.services.apply_adjustment import AdjustWallet, apply_adjustment
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.run_payouts import run_mock_payouts
from modelfaucet.services.seed import SeedResult, seed_demo_data
from tests.conftest import with_settings

ALICE = "alice-web-token-0123456789abcdef-0123456789"
BOB = "bob-web-token-0123456789abcdef-0123456789xx"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def console_settings(settings: Settings) -> Settings:
    return with_settings(settings, operator_tokens={"alice": ALICE, "bob": BOB}, payout_require_distinct_approver=True)


@pytest.fixture
def console_ctx(database: Database, console_settings: Settings) -> ServiceContext:
    return ServiceContext(db=database, settings=console_settings)


@pytest.fixture
def demo(console_ctx: ServiceContext) -> tuple[SeedResult, str]:
    seed = seed_demo_data(console_ctx)
    apply_adjustment(
        console_ctx,
        AdjustWallet(
            seed.developer_wallet_id, AdjustmentKind.ADJUSTMENT, Direction.CREDIT, 20 * UNITS_PER_USD, "bonus"
        ),
        actor=Actor("alice"),
    )
    opened = run_mock_payouts(console_ctx, actor=Actor("alice"), threshold_units=UNITS_PER_USD)
    return seed, opened[0].id


@pytest.fixture
def web(database: Database, console_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(console_settings, db=database), raise_server_exceptions=False) as client:
        yield client


def sign_in(web: TestClient, token: str) -> None:
    web.cookies.clear()
    page = web.get("/console/sign-in")
    csrf = CSRF.search(page.text)
    assert csrf
    answer = web.post("/console/sign-in", data={"csrf_token": csrf.group(1), "token": token}, follow_redirects=False)
    assert answer.status_code == 303


def post_form(web: TestClient, page_path: str, action: str, **fields: str) -> object:
    page = web.get(page_path)
    csrf = CSRF.search(page.text)
    assert csrf, page.text
    return web.post(action, data={"csrf_token": csrf.group(1), **fields}, follow_redirects=False)


def audit_rows(database: Database, action: str) -> list[tuple[str, str | None]]:
    with database.read() as conn:
        rows = conn.execute(select(audit_log.c.actor, audit_log.c.note).where(audit_log.c.action == action)).all()
    return [(r.actor, r.note) for r in rows]


def test_every_console_page_reads(web: TestClient, demo: tuple[SeedResult, str]) -> None:
    seed, payout_id = demo
    sign_in(web, BOB)
    for path in (
        "/console",
        "/console/payouts",
        "/console/payouts?status=pending",
        f"/console/payouts/{payout_id}",
        "/console/wallets",
        "/console/wallets?email=dev@example.com",
        f"/console/wallets?public_app_id={seed.public_app_id}&external_user_id={seed.external_user_id}",
        f"/console/wallets/{seed.developer_wallet_id}",
        "/console/reconciliation",
        "/console/topups",
        "/console/audit",
        "/console/audit?actor=alice",
        "/console/reports",
        "/console/reports?start=2026-01-01&end=2026-01-31",
    ):
        answer = web.get(path)
        assert answer.status_code == 200, (path, answer.text[:500])
        assert "<h1>" in answer.text


def test_searching_by_external_user_id_finds_that_users_wallet(web: TestClient, demo: tuple[SeedResult, str]) -> None:
    seed, _ = demo
    sign_in(web, BOB)
    page = web.get(f"/console/wallets?public_app_id={seed.public_app_id}&external_user_id={seed.external_user_id}")
    assert seed.end_user_wallet_id in page.text and seed.developer_wallet_id not in page.text
    page = web.get("/console/wallets?external_user_id=demo-user-1")
    assert page.status_code == 400 and "external_user_id needs public_app_id" in page.text


def test_unknown_things_are_refused_in_words(web: TestClient) -> None:
    sign_in(web, BOB)
    answer = web.get("/console/payouts/00000000-0000-0000-0000-000000000000")
    assert answer.status_code == 404 and "Not done:" in answer.text
    assert web.get("/console/wallets/not-a-uuid").status_code == 404
    assert web.get("/console/payouts?status=nope").status_code == 400
    assert web.get("/console/reports?start=2026-13-01").status_code == 400


def test_maker_checker_refusal_then_approve_and_pay(
    web: TestClient, demo: tuple[SeedResult, str], database: Database
) -> None:
    _, payout_id = demo
    detail = f"/console/payouts/{payout_id}"
    sign_in(web, ALICE)  # alice opened the payout
    refused = post_form(web, detail, f"{detail}/approve", note="mine")
    assert refused.status_code == 403  # type: ignore[attr-defined]
    assert "Maker-checker: operator &#39;alice&#39; created this payout" in refused.text  # type: ignore[attr-defined]
    assert audit_rows(database, "payout.approve") == []

    sign_in(web, BOB)
    page = web.get(detail).text
    assert f'action="/console/payouts/{payout_id}/approve"' in page
    assert "mark-paid" not in page  # only the transitions allowed now are offered
    done = post_form(web, detail, f"{detail}/approve", note="checked the bank details")
    assert done.status_code == 303 and done.headers["location"] == f"{detail}?done=approved"  # type: ignore[attr-defined]
    page = web.get(f"{detail}?done=approved").text
    assert "The payout is approved." in page and "/approve" not in page and "mark-paid" in page
    paid = post_form(web, detail, f"{detail}/mark-paid")
    assert paid.status_code == 303  # type: ignore[attr-defined]
    assert "No action is possible on a paid payout." in web.get(detail).text
    assert audit_rows(database, "payout.approve") == [("bob", "checked the bank details")]
    assert [actor for actor, _ in audit_rows(database, "payout.mark_paid")] == ["bob"]
    # a transition no longer allowed, posted anyway, is refused in words
    again = post_form(web, detail, f"{detail}/cancel")
    assert again.status_code == 409 and "only a pending or processing payout can be cancelled" in again.text  # type: ignore[attr-defined]


def test_an_adjustment_applies_once_under_its_generated_key(
    web: TestClient, demo: tuple[SeedResult, str], database: Database
) -> None:
    seed, _ = demo
    page_path = f"/console/wallets/{seed.end_user_wallet_id}"
    sign_in(web, BOB)
    page = web.get(page_path).text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    csrf = CSRF.search(page)
    assert key and csrf
    form = {
        "csrf_token": csrf.group(1),
        "idempotency_key": key.group(1),
        "kind": "adjustment",
        "direction": "credit",
        "amount_usd": "5.25",
        "reason": "goodwill",
    }
    for _ in range(2):  # a double submit
        answer = web.post(f"{page_path}/adjust", data=form, follow_redirects=False)
        assert answer.status_code == 303
    with database.read() as conn:
        rows = conn.execute(select(adjustments.c.amount_units).where(adjustments.c.reason == "goodwill")).all()
    assert [r.amount_units for r in rows] == [525_000_000]
    assert [actor for actor, _ in audit_rows(database, "wallet.adjustment.credit")][-1:] == ["bob"]
    assert "$15.25" in web.get(page_path).text  # the seed's $10 opening balance + 5.25
    bad = web.post(f"{page_path}/adjust", data={**form, "idempotency_key": "k2", "amount_usd": "-1"})
    assert bad.status_code == 400 and "amount_usd must be" in bad.text


def test_statement_and_report_downloads(web: TestClient, demo: tuple[SeedResult, str]) -> None:
    seed, _ = demo
    sign_in(web, BOB)
    statement = web.get(f"/console/wallets/{seed.end_user_wallet_id}/statement.csv")
    assert statement.status_code == 200
    assert statement.headers["content-disposition"].startswith('attachment; filename="statement-')
    rows = list(csv.reader(io.StringIO(statement.text)))
    assert rows[0][0] == "posted_at" and any("opening_balance" in r for r in rows)
    # The statement form's "to" day is included, as on the reports page: a statement of
    # today alone (from = to = today) holds today's postings.
    page = web.get(f"/console/wallets/{seed.end_user_wallet_id}").text
    assert "To (UTC day, included)" in page and "excluded" not in page
    today = datetime.now(UTC).date().isoformat()
    assert f'name="end" type="date" value="{today}"' in page
    one_day = web.get(f"/console/wallets/{seed.end_user_wallet_id}/statement.csv?start={today}&end={today}")
    assert one_day.status_code == 200, one_day.text
    reasons = [line["reason"] for line in csv.DictReader(io.StringIO(one_day.text))]
    assert reasons[0] == "opening_balance" and reasons[-1] == "closing_balance", reasons
    assert len(reasons) > 2, reasons  # the seed's postings, made today
    report = web.get("/console/reports/payouts.csv?start=2000-01-01&end=2100-01-01")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    assert len(list(csv.reader(io.StringIO(report.text)))) == 2  # header + the payout
    assert web.get("/console/reports/nope.csv").status_code == 404
    assert web.get("/console/reports/usage.csv?start=2026-02-01&end=2026-01-01").status_code == 400


@pytest.mark.parametrize(
    "query",
    ["start=9999-12-31&end=9999-12-31", "end=9999-12-31", "end=%D9%A1%D9%A2", "start=2026-02-30"],
)
def test_form_days_that_name_no_window_are_refused_in_words(
    web: TestClient, demo: tuple[SeedResult, str], query: str
) -> None:
    """The last representable day (no day follows it), non-ASCII digits and impossible
    dates: 400 with the field named on every console page that reads a range, never 500."""
    seed, _ = demo
    sign_in(web, BOB)
    for path in (
        f"/console/wallets/{seed.end_user_wallet_id}/statement.csv",
        "/console/reports/usage.csv",
        "/console/reports",
    ):
        answer = web.get(f"{path}?{query}")
        assert answer.status_code == 400, (path, answer.text[:200])
        assert "must be" in answer.text and "Traceback" not in answer.text


def test_the_audit_page_shows_the_chain_verification(web: TestClient, demo: tuple[SeedResult, str]) -> None:
    sign_in(web, BOB)
    page = web.get("/console/audit").text
    assert "Intact" in page and "entries checked" in page


def test_the_overview_shows_the_newest_stored_reconciliation_run_without_running_one(
    web: TestClient, demo: tuple[SeedResult, str], console_ctx: ServiceContext, database: Database
) -> None:
    from modelfaucet.adapters.db.tables import reconciliation_runs
    from modelfaucet.domain.reconciliation import RunSource
    from modelfaucet.services.reconcile import reconcile_ledger

    sign_in(web, BOB)
    assert "Not run yet" in web.get("/console").text
    with database.read() as conn:  # reading the overview stored no run of its own
        assert conn.execute(select(reconciliation_runs.c.id)).all() == []

    reconcile_ledger(console_ctx, source=RunSource.CLI)  # e.g. a cron job's `modelfaucet reconcile`
    page = web.get("/console").text
    assert "Every wallet balanced and every check passed in the last run." in page
    assert "(cli)" in page
    with database.read() as conn:
        assert len(conn.execute(select(reconciliation_runs.c.id)).all()) == 1


def test_paging_cursors_out_of_range_or_not_ascii_are_a_400_not_a_500(
    web: TestClient, demo: tuple[SeedResult, str]
) -> None:
    seed, _ = demo
    sign_in(web, BOB)
    for page in ("/console/audit", f"/console/wallets/{seed.end_user_wallet_id}"):
        for cursor in ("99999999999999999999999", "-1", "0", "%D9%A3"):
            answer = web.get(f"{page}?before={cursor}")
            assert answer.status_code == 400, (page, cursor, answer.status_code)
            assert "Traceback" not in answer.text
