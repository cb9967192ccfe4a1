"""Browser fixtures: a live server with demo data, and headless Chromium driven by Selenium.

- ``web_server`` (per test): ``modelfaucet serve`` on a free loopback port over a fresh
  SQLite file filled by :func:`tests.browser.demo.build_demo` (seed, a week of usage, a
  developer token, a pending payout opened by operator ``alice``). Operators ``alice`` and
  ``bob`` (``OPERATOR_TOKENS``) and the admin token (``ADMIN_TOKEN``) can sign in. Maker-
  checker is on. ``web_server_pg`` is the same on PostgreSQL (skips without a server).
- ``browser`` (per test): a :class:`Browser` wrapping a headless Chrome WebDriver
  (``/usr/bin/chromium`` + ``/usr/bin/chromedriver``, ``--headless=new --no-sandbox``) with
  its own download directory. Skips, with the reason, when either binary is missing — unless
  ``MODELFAUCET_REQUIRE_BROWSER=1`` (CI), where it fails.
- ``Browser.screenshot(page_name)`` saves ``build/screenshots/<page_name>.png`` (or under
  ``MODELFAUCET_SCREENSHOT_DIR``; the README's pictures in ``docs/screenshots/`` are refreshed
  with ``MODELFAUCET_SCREENSHOT_DIR=docs/screenshots``). A test run never dirties the checkout.
- ``Browser.wait_for_download(suffix)`` waits for a finished file in the download directory.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelfaucet.config import Settings
from tests.browser.demo import OPERATOR_TOKENS, Demo, build_demo, operator_tokens_env
from tests.conftest import ADMIN_TOKEN, GATEWAY_TOKEN, LiveServer, _truncate_all, start_live_server

CHROMIUM = os.environ.get("MODELFAUCET_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MODELFAUCET_CHROMEDRIVER", "/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / os.environ.get("MODELFAUCET_SCREENSHOT_DIR", "build/screenshots")
WINDOW = (1280, 900)


def _missing_browser() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() and os.access(path, os.X_OK)):
            return f"{path} is not installed (apt-get install -y chromium chromium-driver): browser test not run"
    return None


@dataclass
class WebServer:
    """A running service with demo data, and what a test needs to sign in."""

    live: LiveServer
    demo: Demo
    admin_token: str
    operator_tokens: dict[str, str]

    @property
    def base_url(self) -> str:
        return self.live.base_url


def _start(settings: Settings, tmp_path: Path) -> tuple[LiveServer, Demo]:
    demo = build_demo(settings)
    live = start_live_server(
        settings,
        tmp_path,
        extra_env={"MODELFAUCET_OPERATOR_TOKENS": operator_tokens_env(), "PAYOUT_REQUIRE_DISTINCT_APPROVER": "1"},
    )
    return live, demo


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[WebServer]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'web.sqlite3'}",
        admin_token=ADMIN_TOKEN,
        gateway_service_token=GATEWAY_TOKEN,
        operator_tokens=OPERATOR_TOKENS,
        payout_require_distinct_approver=True,
    )
    live, demo = _start(settings, tmp_path)
    yield WebServer(live, demo, ADMIN_TOKEN, dict(OPERATOR_TOKENS))
    live.stop()


@pytest.fixture
def web_server_pg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WebServer]:
    """The same server on this run's PostgreSQL database (emptied first): for money actions."""
    state = request.getfixturevalue("_pg")
    if state.url is None:
        if os.environ.get("MODELFAUCET_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is mandatory here: {state.error}")
        pytest.skip(state.error or "PostgreSQL unavailable")
    _truncate_all(state.url)
    settings = Settings(
        database_url=state.url,
        admin_token=ADMIN_TOKEN,
        gateway_service_token=GATEWAY_TOKEN,
        operator_tokens=OPERATOR_TOKENS,
        payout_require_distinct_approver=True,
    )
    live, demo = _start(settings, tmp_path)
    yield WebServer(live, demo, ADMIN_TOKEN, dict(OPERATOR_TOKENS))
    live.stop()


class Browser:
    """A headless Chrome session on one server, with helpers for the page tests."""

    def __init__(self, driver: object, base_url: str, downloads: Path) -> None:
        from selenium.webdriver.remote.webdriver import WebDriver

        assert isinstance(driver, WebDriver)
        self.driver = driver
        self.base_url = base_url
        self.downloads = downloads

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    @property
    def path(self) -> str:
        url = str(self.driver.current_url)
        return url.removeprefix(self.base_url)

    def find(self, css: str) -> object:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[object]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str = "main") -> str:
        from selenium.webdriver.common.by import By

        return str(self.driver.find_element(By.CSS_SELECTOR, css).text)

    def fill(self, label_text: str, value: str) -> None:
        """Type into the control whose <label> reads ``label_text`` (so every control needs one)."""
        from selenium.webdriver.common.by import By

        label = self.driver.find_element(By.XPATH, f"//label[normalize-space()={_xpath_literal(label_text)}]")
        control = self.driver.find_element(By.ID, label.get_attribute("for"))
        control.clear()
        control.send_keys(value)

    def click_button(self, text: str, *, navigates: bool = True) -> None:
        """Click the button reading ``text``; wait for the next page unless ``navigates`` is False
        (a download)."""
        from selenium.webdriver.common.by import By

        button = self.driver.find_element(By.XPATH, f"//button[normalize-space()={_xpath_literal(text)}]")
        self._then_wait(button.click, navigates)

    def follow(self, css: str, *, navigates: bool = True) -> None:
        """Click the link matching ``css``; wait for the next page unless it is a download."""
        from selenium.webdriver.common.by import By

        link = self.driver.find_element(By.CSS_SELECTOR, css)
        self._then_wait(link.click, navigates)

    def _then_wait(self, action: Callable[[], object], navigates: bool) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        page = self.driver.find_element(By.TAG_NAME, "html")
        action()
        if navigates:
            WebDriverWait(self.driver, 20).until(lambda _: _left(page))
            WebDriverWait(self.driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")

    def sign_in(self, area: str, token: str) -> None:
        self.open(f"/{area}/sign-in")
        label = "Operator or admin token" if area == "console" else "Developer token (mf_dev_…)"
        self.fill(label, token)
        self.click_button("Sign in")

    def screenshot(self, page_name: str) -> Path:
        """Save the whole page as ``<SCREENSHOTS>/<page_name>.png``."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        height = int(self.driver.execute_script("return document.documentElement.scrollHeight"))
        self.driver.set_window_size(WINDOW[0], max(WINDOW[1], min(height + 40, 4000)))
        target = SCREENSHOTS / f"{page_name}.png"
        self.driver.save_screenshot(str(target))
        self.driver.set_window_size(*WINDOW)
        return target

    def wait_for_download(self, suffix: str, *, timeout: float = 20.0) -> Path:
        """A finished download ending in ``suffix`` (Chrome's ``.crdownload`` gone)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [p for p in self.downloads.iterdir() if p.name.endswith(suffix)]
            partial = [p for p in self.downloads.iterdir() if p.name.endswith(".crdownload")]
            if done and not partial:
                return done[0]
            time.sleep(0.1)
        raise AssertionError(
            f"no {suffix} download within {timeout}s: {sorted(p.name for p in self.downloads.iterdir())}"
        )

    def set_download_dir(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.driver.execute_cdp_cmd(  # type: ignore[attr-defined]
            "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(directory)}
        )
        self.downloads = directory

    def console_errors(self) -> list[str]:
        """Browser console entries of level SEVERE (a CSP violation, a script error) — bar the
        notes Chrome logs for a page answered with an error status (a refusal page is one)."""
        entries = self.driver.get_log("browser")  # type: ignore[attr-defined]
        return [
            str(e["message"])
            for e in entries
            if e.get("level") == "SEVERE" and "the server responded with a status of" not in str(e["message"])
        ]


def _left(page: object) -> bool:
    """True once ``page`` (the old document's ``<html>``) is gone. Chrome says so either as a
    stale element or, when the node's id is already recycled under load, as "Node with given
    id does not belong to the document"; both mean the next page has replaced it."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        page.is_enabled()  # type: ignore[attr-defined]
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in str(error.msg):
            return True
        raise
    return False


def _xpath_literal(text: str) -> str:
    if "'" not in text:
        return f"'{text}'"
    return "concat('" + text.replace("'", "', \"'\", '") + "')"


def make_driver(downloads: Path) -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture
def browser_factory(tmp_path: Path) -> Iterator[object]:
    """``browser_factory(server)`` → a new :class:`Browser` (a second one: another person)."""
    missing = _missing_browser()
    if missing:
        if os.environ.get("MODELFAUCET_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    made: list[Browser] = []

    def factory(server: WebServer) -> Browser:
        downloads = tmp_path / f"downloads-{len(made)}"
        downloads.mkdir()
        one = Browser(make_driver(downloads), server.base_url, downloads)
        one.driver.implicitly_wait(2)
        made.append(one)
        return one

    yield factory
    for one in made:
        one.driver.quit()


@pytest.fixture
def browser(browser_factory: object, web_server: WebServer) -> Browser:
    assert callable(browser_factory)
    made = browser_factory(web_server)
    assert isinstance(made, Browser)
    return made


def have_browser() -> bool:
    return _missing_browser() is None and shutil.which(CHROMIUM) is not None
