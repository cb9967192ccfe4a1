"""The accessibility checker (``tests/accessibility.py``) catches what it claims to, in
headless Chromium: a page served over HTTP with one fault of each kind is reported fault by
fault, and a page without faults passes — so a clean run over the console and portal
pages means something.

Uses the browser harness's Chromium (``tests/browser/conftest.py``): skipped with the reason
where it is not installed, a failure instead under ``MODELFAUCET_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.accessibility import assert_accessible, problems
from tests.browser.conftest import _missing_browser, make_driver

GOOD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Earnings</title>
<link rel="stylesheet" href="/page.css"></head>
<body><header><a href="/">Home</a></header>
<main><h1>Earnings</h1>
<p class="dark">Readable text.</p>
<form action="/" method="post">
  <label for="from">From</label><input id="from" name="from" type="date">
  <label>Group by <select name="g"><option>day</option><option>app</option></select></label>
  <fieldset><legend>Format</legend>
    <label><input type="radio" name="f" value="csv" checked> CSV</label>
    <label><input type="radio" name="f" value="json"> JSON</label>
  </fieldset>
  <label for="note">Note</label><textarea id="note" name="note"></textarea>
  <button type="submit">Show</button>
</form>
<details><summary>More</summary><p>Hidden until opened.</p></details>
</main></body></html>
"""

BROKEN = """<!doctype html>
<html><head><meta charset="utf-8"><title>Broken</title>
<link rel="stylesheet" href="/page.css"></head>
<body><main><h1>Broken</h1>
<p class="faint">Grey text on white, 2.3:1.</p>
<form action="/" method="post">
  <input id="unlabelled" name="amount" type="text">
  <select id="nameless-select" name="g"><option>day</option></select>
  <button id="empty-button" type="submit"></button>
  <a id="jumps-the-queue" href="/first" tabindex="3">First</a>
  <a id="off-the-keyboard" href="/hidden-from-tab" tabindex="-1">Statement</a>
</form>
</main></body></html>
"""

# A stylesheet of its own: the pages' policy, like the service's, allows no inline style.
CSS = "body { background: #ffffff; } .dark { color: #1a1a1a; } .faint { color: #aaaaaa; }"
PAGES = {"/good": (GOOD, "text/html"), "/broken": (BROKEN, "text/html"), "/page.css": (CSS, "text/css")}


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        text, content_type = PAGES.get(self.path, ("", "text/plain"))
        body = text.encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Security-Policy", "default-src 'self'")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def pages() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """The browser harness's headless Chromium (skips or, under MODELFAUCET_REQUIRE_BROWSER=1, fails)."""
    missing = _missing_browser()
    if missing:
        if os.environ.get("MODELFAUCET_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    browser = make_driver(tmp_path_factory.mktemp("downloads"))
    assert isinstance(browser, WebDriver)
    browser.set_script_timeout(60)
    yield browser
    browser.quit()


def test_a_page_with_one_fault_of_each_kind_is_reported_fault_by_fault(driver: WebDriver, pages: str) -> None:
    driver.get(f"{pages}/broken")
    found = {problem.rule: problem for problem in problems(driver)}
    assert "html-has-lang" in found
    assert "#unlabelled" in found["label"].targets
    assert "#nameless-select" in found["select-name"].targets
    assert "#empty-button" in found["button-name"].targets
    assert found["color-contrast"].targets == ("p",)
    assert "#jumps-the-queue" in found["tabindex"].targets
    assert found["keyboard-reach"].targets == ('a#off-the-keyboard "Statement"',)
    with pytest.raises(AssertionError, match="keyboard-reach"):
        assert_accessible(driver, "the broken page")


def test_a_page_without_faults_passes(driver: WebDriver, pages: str) -> None:
    driver.get(f"{pages}/good")
    assert problems(driver) == []
    assert_accessible(driver, "the good page")


def test_the_checker_leaves_no_trace_in_the_page(driver: WebDriver, pages: str) -> None:
    driver.get(f"{pages}/good")
    problems(driver)
    assert driver.execute_script("return document.querySelectorAll('[data-a11y-reach]').length") == 0
