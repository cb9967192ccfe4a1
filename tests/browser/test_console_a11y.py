"""Accessibility basics of every console page, in Chromium: labels on every control, named
buttons and links, a ``lang``, text contrast (an in-page check of our own, ``a11y.js``), and
actions reachable from the keyboard alone."""

from __future__ import annotations

from pathlib import Path

from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import Browser, WebServer

A11Y_JS = (Path(__file__).parent / "a11y.js").read_text()


def audit(browser: Browser) -> list[str]:
    return [str(p) for p in browser.driver.execute_script(A11Y_JS)]


def test_every_console_page_passes_the_basic_checks(browser: Browser, web_server: WebServer) -> None:
    seed = web_server.demo.seed
    browser.open("/console/sign-in")
    assert audit(browser) == [], "/console/sign-in"
    # The check itself finds what it should: pale text, an unlabelled control.
    browser.driver.execute_script(
        "var s = document.createElement('span'); s.textContent = 'pale'; s.className = 'hint';"
        "s.setAttribute('data-x', '1'); document.querySelector('main').appendChild(s);"
        "s.ownerDocument.defaultView.getComputedStyle(s); s.animate([{color: '#bbbbbb'}, {color: '#bbbbbb'}],"
        "{duration: 100000, fill: 'forwards'});"
        "document.querySelector('main').appendChild(document.createElement('input'));"
    )
    found = audit(browser)
    assert any(p.startswith("contrast") and "'pale'" in p for p in found), found
    assert any(p.startswith("control without a label") for p in found), found
    browser.sign_in("console", web_server.operator_tokens["bob"])
    for path in (
        "/console",
        "/console/payouts",
        f"/console/payouts/{web_server.demo.payout_id}",
        "/console/wallets",
        f"/console/wallets/{seed.end_user_wallet_id}",
        "/console/reconciliation",
        "/console/topups",
        "/console/audit",
        "/console/reports",
        "/console/payouts/00000000-0000-0000-0000-000000000000",  # a refusal page
    ):
        browser.open(path)
        assert audit(browser) == [], path


def test_the_skip_link_and_a_payout_action_work_from_the_keyboard(browser: Browser, web_server: WebServer) -> None:
    browser.sign_in("console", web_server.operator_tokens["bob"])
    browser.open(f"/console/payouts/{web_server.demo.payout_id}")
    body = browser.find("body")
    body.send_keys(Keys.TAB)  # type: ignore[attr-defined]
    active = browser.driver.switch_to.active_element
    assert active.text == "Skip to main content"
    active.send_keys(Keys.ENTER)
    assert browser.driver.execute_script("return document.activeElement.id") == "main"
    for _ in range(40):  # tab on to the Approve button
        browser.driver.switch_to.active_element.send_keys(Keys.TAB)
        if browser.driver.switch_to.active_element.text == "Approve":
            break
    else:
        raise AssertionError("the Approve button is not reachable with the Tab key")
    page = browser.find("html")
    browser.driver.switch_to.active_element.send_keys(Keys.ENTER)
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser.driver, 20).until(expected_conditions.staleness_of(page))
    assert "The payout is approved." in browser.text(".flash-ok")
