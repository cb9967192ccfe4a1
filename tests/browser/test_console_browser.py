"""The operator console in real headless Chromium (SPEC §21)."""

from __future__ import annotations

from tests.browser.conftest import Browser, WebServer


def test_sign_in_overview_and_sign_out(browser: Browser, web_server: WebServer) -> None:
    browser.open("/console")
    assert browser.path.startswith("/console/sign-in")
    browser.screenshot("console-sign-in")
    browser.sign_in("console", web_server.operator_tokens["bob"])
    assert browser.path == "/console"
    assert "Signed in as bob" in browser.text("header")
    body = browser.text()
    assert "Open payouts" in body and "Reconciliation" in body
    assert web_server.operator_tokens["bob"] not in browser.driver.page_source
    assert browser.find_all("figure.chart svg[role=img]")
    browser.screenshot("console-overview")
    assert browser.console_errors() == []
    browser.click_button("Sign out")
    assert browser.path.startswith("/console/sign-in")
    assert "You are signed out." in browser.text()
    browser.open("/console")
    assert browser.path.startswith("/console/sign-in")
