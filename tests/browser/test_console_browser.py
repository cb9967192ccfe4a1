"""The operator console in real headless Chromium (SPEC §21): sign in, maker-checker refused
in words, approve and pay, adjust, download a statement and a report, sign out; a
screenshot of every page into build/screenshots/ (see conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.browser.conftest import Browser, WebServer

ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(params=ENGINES)
def money_server(request: pytest.FixtureRequest) -> WebServer:
    """The demo server on SQLite and on PostgreSQL: money actions run on both."""
    name = "web_server" if request.param == "sqlite" else "web_server_pg"
    server: WebServer = request.getfixturevalue(name)
    return server


def test_sign_in_overview_and_sign_out(browser: Browser, web_server: WebServer) -> None:
    browser.open("/console")
    assert browser.path.startswith("/console/sign-in")
    browser.screenshot("console-sign-in")
    browser.sign_in("console", "not-the-token")
    assert "That token was not accepted" in browser.text()
    assert "not-the-token" not in browser.driver.page_source
    browser.sign_in("console", web_server.operator_tokens["bob"])
    assert browser.path == "/console"
    assert "Signed in as bob" in browser.text("header")
    body = browser.text()
    assert "Open payouts" in body and "Reconciliation" in body and "Top-ups needing attention" in body
    assert web_server.operator_tokens["bob"] not in browser.driver.page_source
    charts = browser.find_all("figure.chart svg[role=img]")
    assert len(charts) == 2
    browser.screenshot("console-overview")
    assert browser.console_errors() == []
    browser.click_button("Sign out")
    assert browser.path.startswith("/console/sign-in")
    assert "You are signed out." in browser.text()
    browser.open("/console")
    assert browser.path.startswith("/console/sign-in")
    server_log = web_server.live.log_path.read_text()
    assert "POST /console/sign-in" in server_log or "/console/sign-in" in server_log
    assert web_server.operator_tokens["bob"] not in server_log and "not-the-token" not in server_log


def test_maker_checker_refusal_then_approve_and_pay(
    browser_factory: Callable[[WebServer], Browser], money_server: WebServer, request: pytest.FixtureRequest
) -> None:
    shots = request.node.callspec.params.get("money_server") == "sqlite"
    payout_id = money_server.demo.payout_id
    assert payout_id
    alice = browser_factory(money_server)
    alice.sign_in("console", money_server.operator_tokens["alice"])
    alice.open("/console/payouts")
    assert "pending" in alice.text("table")
    if shots:
        alice.screenshot("console-payouts")
    alice.follow(f'a[href="/console/payouts/{payout_id}"]')
    assert alice.path == f"/console/payouts/{payout_id}"
    assert [b.text for b in alice.find_all("form.card button")] == ["Approve", "Cancel payout"]  # type: ignore[attr-defined]
    alice.click_button("Approve")
    refusal = alice.text(".flash-error")
    assert "Maker-checker: operator 'alice' created this payout and cannot also approve it" in refusal
    if shots:
        alice.screenshot("console-payout-maker-checker")

    bob = browser_factory(money_server)
    bob.sign_in("console", money_server.operator_tokens["bob"])
    bob.open(f"/console/payouts/{payout_id}")
    if shots:
        bob.screenshot("console-payout")
    bob.fill("Note for “Approve” (optional)", "bank details checked")
    bob.click_button("Approve")
    assert "The payout is approved." in bob.text(".flash-ok")
    assert bob.text("#payout-status") == "processing"
    assert [b.text for b in bob.find_all("form.card button")] == ["Mark paid", "Cancel payout", "Mark failed"]  # type: ignore[attr-defined]
    bob.click_button("Mark paid")
    assert "The payout is marked paid." in bob.text(".flash-ok")
    assert bob.text("#payout-status") == "paid"
    assert "No action is possible on a paid payout." in bob.text()
    history = bob.text("table")
    assert "bob payout.approve" in history and "bank details checked" in history and "bob payout.mark_paid" in history
    bob.open("/console/audit?actor=bob")
    assert "payout.mark_paid" in bob.text("table")
    assert bob.console_errors() == [] and alice.console_errors() == []


def test_adjustment_statement_and_report_downloads(
    browser_factory: Callable[[WebServer], Browser], money_server: WebServer, request: pytest.FixtureRequest
) -> None:
    shots = request.node.callspec.params.get("money_server") == "sqlite"
    seed = money_server.demo.seed
    bob = browser_factory(money_server)
    bob.sign_in("console", money_server.operator_tokens["bob"])
    bob.open("/console/wallets")
    bob.fill("App id (public)", seed.public_app_id)
    bob.fill("External user id", seed.external_user_id)
    bob.click_button("Search")
    rows = bob.find_all("tbody tr")
    assert len(rows) == 1
    if shots:
        bob.screenshot("console-wallets")
    bob.follow(f'a[href="/console/wallets/{seed.end_user_wallet_id}"]')
    before = bob.text("#wallet-balance")
    bob.fill("Amount (USD)", "7.50")
    bob.fill("Reason", "goodwill credit for an outage")
    bob.click_button("Apply adjustment")
    assert "The adjustment is applied." in bob.text(".flash-ok")
    after = bob.text("#wallet-balance")
    assert _dollars(after) - _dollars(before) == pytest.approx(7.5)
    assert "goodwill" not in bob.driver.current_url
    if shots:
        bob.screenshot("console-wallet")
    bob.click_button("Download statement (CSV)", navigates=False)
    statement = bob.wait_for_download(".csv")
    text = statement.read_text()
    assert statement.name.startswith("statement-") and "opening_balance" in text and "7.50000000" in text
    statement.unlink()

    bob.open("/console/reports")
    if shots:
        bob.screenshot("console-reports")
    bob.follow('a[href^="/console/reports/usage.csv"]', navigates=False)
    report = bob.wait_for_download(".csv")
    lines = report.read_text().splitlines()
    assert lines[0].startswith("created_at") or "request_id" in lines[0]
    assert len(lines) == 1 + money_server.demo.usage_events
    assert bob.console_errors() == []


def test_reading_pages_and_their_screenshots(browser: Browser, web_server: WebServer) -> None:
    browser.sign_in("console", web_server.operator_tokens["bob"])
    browser.open("/console/reconciliation")
    assert "Every wallet's balance equals the sum of its postings." in browser.text()
    browser.screenshot("console-reconciliation")
    browser.open("/console/topups")
    assert "Last sync: never" in browser.text()
    browser.click_button("Sync with Stripe now")  # the offline test Stripe here
    assert "Stripe sync finished." in browser.text(".flash-ok")
    assert "Last sync: never" not in browser.text()
    browser.screenshot("console-topups")
    browser.open("/console/audit")
    assert "Intact" in browser.text(".card")
    browser.screenshot("console-audit")
    assert browser.console_errors() == []


def test_everything_works_without_javascript(
    browser_factory: Callable[[WebServer], Browser], web_server: WebServer
) -> None:
    """Pages read and forms act with scripts off (progressive enhancement only)."""
    one = browser_factory(web_server)
    one.driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})  # type: ignore[attr-defined]
    one.sign_in("console", web_server.operator_tokens["bob"])
    one.open(f"/console/payouts/{web_server.demo.payout_id}")
    one.driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})  # type: ignore[attr-defined]
    one.click_button("Approve")
    assert "The payout is approved." in one.text(".flash-ok")


def _dollars(text: str) -> float:
    return float(text.replace("$", "").replace(",", "").replace("−", "-"))
