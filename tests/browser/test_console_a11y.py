"""Console actions work from the keyboard alone (the skip link, then Tab to Approve and
Enter). Labels, names, ``lang`` and contrast of every console and portal page are checked by
axe-core in ``test_accessibility_pages.py``."""

from __future__ import annotations

from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import Browser, WebServer


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
