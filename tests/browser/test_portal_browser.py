"""The developer portal in real headless Chromium (SPEC §21, issue 15).

The demo developer signs in with their developer token, reads the earnings chart and its
table, the payouts, downloads a statement, adds and deletes a provider key with plain
forms, and signs out. A second developer, signed in with their own token, cannot reach the
first one's earnings, payout, statement or key — not even by putting the first one's ids
in the URL or in a form. Every portal page is saved to ``build/screenshots/portal-*.png`` (see ``conftest.py``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from modelfaucet.adapters.db.database import Database
from modelfaucet.config import Settings
from modelfaucet.domain.money import UNITS_PER_USD
from modelfaucet.services import catalog, developer_access
from modelfaucet.services.context import Actor, ServiceContext, utcnow
from modelfaucet.services.developer_tokens import issue_developer_token
from modelfaucet.services.repositories import ProviderKeyRecord
from tests.browser.conftest import Browser, WebServer
from tests.conftest import ADMIN_TOKEN, GATEWAY_TOKEN

FIRST_KEY = "mock-first-developers-key-0123456789"
PORTAL_KEY = "mock-added-in-the-portal-0123456789"


@dataclass(frozen=True)
class SecondDeveloper:
    developer_id: str
    token: str
    public_app_id: str


@dataclass(frozen=True)
class Books:
    """What the server's database holds besides the demo: the first developer's provider
    key and a second developer with an app of their own and a token."""

    first_key: ProviderKeyRecord
    second: SecondDeveloper
    ctx: ServiceContext


@pytest.fixture
def books(web_server: WebServer) -> Iterator[Books]:
    settings = Settings(
        database_url=web_server.live.env["DATABASE_URL"], admin_token=ADMIN_TOKEN, gateway_service_token=GATEWAY_TOKEN
    )
    database = Database.from_url(settings.database_url)
    ctx = ServiceContext(db=database, settings=settings, clock=utcnow)
    operator = Actor("alice")
    first = web_server.demo.seed.developer_id
    first_key = developer_access.add_provider_key_of(
        ctx, first, Actor(f"developer:{first}"), provider="mock", api_key=FIRST_KEY, base_url=None, models_allowed=None
    )
    second_id = catalog.create_developer(ctx, operator, name="Second", email="second@example.com").developer.id
    catalog.create_app(
        ctx,
        operator,
        developer_id=second_id,
        public_app_id="second-app",
        name="Second app",
        default_revenue_share_bps=3000,
    )
    token = issue_developer_token(ctx, operator, developer_id=second_id, name="second").token
    yield Books(first_key, SecondDeveloper(second_id, token, "second-app"), ctx)
    database.dispose()


def sign_in(browser: Browser, token: str) -> None:
    browser.open("/portal/sign-in")
    browser.fill("Developer token (mf_dev_…)", token)
    browser.click_button("Sign in")
    assert browser.path == "/portal", browser.text()


def api(server: WebServer, path: str, token: str) -> httpx.Response:
    return httpx.get(f"{server.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def units(usd: str) -> int:
    return int(Decimal(usd) * UNITS_PER_USD)


def page_units(text: str) -> int:
    """``$1,234.56`` or ``−$0.25`` as units."""
    negative = text.startswith("−")
    value = Decimal(text.lstrip("−").lstrip("$").replace(",", ""))
    return int((-value if negative else value) * UNITS_PER_USD)


def test_a_developer_signs_in_reads_earnings_and_payouts_downloads_a_statement_and_signs_out(
    browser: Browser, web_server: WebServer
) -> None:
    demo = web_server.demo
    token = demo.developer_token
    browser.open("/portal")
    assert browser.path.startswith("/portal/sign-in")
    browser.screenshot("portal-sign-in")
    sign_in(browser, token)
    assert token not in browser.driver.page_source

    # Earnings: the balance as the API reads it, a chart with one bar per day and its table.
    balance = api(web_server, "/v1/developer/balance", token).json()
    assert page_units(browser.text("#balance-usd")) == units(balance["balance_usd"])
    assert page_units(browser.text("#available-usd")) == units(balance["available_usd"])
    assert browser.find_all("figure#earnings-per-day svg[role=img]")
    bars = browser.find_all("figure#earnings-per-day rect.bar")
    assert len(bars) == 30  # the last thirty days, days without usage drawn as zero
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "figure#earnings-per-day details table tbody tr")
    assert len(rows) == 30
    days = [row.find_element(By.CSS_SELECTOR, "th").get_attribute("textContent") for row in rows]
    start, end = days[0], days[-1]
    earned = api(web_server, f"/v1/developer/earnings?group_by=app&from={start}", token).json()
    assert page_units(browser.text("#period-earnings")) == units(earned["totals"]["channel_revenue_usd"]) > 0
    cells = [row.find_elements(By.CSS_SELECTOR, "td")[0].get_attribute("textContent") for row in rows]
    assert sum(page_units(cell) for cell in cells) == units(earned["totals"]["channel_revenue_usd"])
    # The days with earnings are the API's (the demo's week, each day's calls a few minutes before now).
    per_day = api(web_server, f"/v1/developer/earnings?group_by=day&from={start}", token).json()["items"]
    earning_days = {item["key"] for item in per_day if units(item["channel_revenue_usd"]) > 0}
    assert {day for day, cell in zip(days, cells, strict=True) if page_units(cell) > 0} == earning_days
    assert len(earning_days) >= 6
    by_app = browser.text("#by-app-table")
    assert demo.seed.public_app_id in by_app
    by_model = api(web_server, f"/v1/developer/earnings?group_by=model&from={start}", token).json()["items"]
    assert by_model
    assert all(item["key"] in browser.text("#by-model-table") for item in by_model)
    assert demo.seed.feature_key in browser.text("#by-feature-table")
    browser.screenshot("portal-earnings")

    # The same page for a chosen range: both days included.
    # (A date input takes typed digits in the browser's locale order; set its value instead.)
    week_ago = days[-7]
    browser.driver.execute_script(
        "document.getElementById('range-from').value = arguments[0];"
        "document.getElementById('range-to').value = arguments[1];",
        week_ago,
        end,
    )
    browser.click_button("Show")
    assert browser.path == f"/portal?from={week_ago}&to={end}"
    assert len(browser.find_all("figure#earnings-per-day rect.bar")) == 7
    day_after = (date.fromisoformat(end) + timedelta(days=1)).isoformat()  # `to` is included: up to its midnight
    week = api(web_server, f"/v1/developer/earnings?group_by=day&from={week_ago}&to={day_after}", token).json()
    assert page_units(browser.text("#period-earnings")) == units(week["totals"]["channel_revenue_usd"]) > 0

    # Payouts: the one the demo opened, with its status, and its detail.
    browser.open("/portal/payouts")
    assert demo.payout_id is not None
    assert "pending" in browser.text("#payouts-table")
    browser.screenshot("portal-payouts")
    browser.driver.find_element(By.CSS_SELECTOR, f"a[href='/portal/payouts/{demo.payout_id}']").click()
    assert browser.path == f"/portal/payouts/{demo.payout_id}"
    assert browser.text("#payout-status") == "pending"
    browser.screenshot("portal-payout")

    # Statement: the page's closing balance is the CSV's last row, and the wallet's balance.
    browser.open("/portal/statement")
    closing = page_units(browser.text("#closing-usd"))
    assert closing == units(balance["balance_usd"])
    browser.screenshot("portal-statement")
    browser.set_download_dir(browser.downloads / "statement")
    browser.find("#download-statement").click()  # type: ignore[attr-defined]
    downloaded = browser.wait_for_download(".csv")
    lines = list(csv.DictReader(io.StringIO(downloaded.read_text(encoding="utf-8"))))
    assert lines[0]["reason"] == "opening_balance" and lines[-1]["reason"] == "closing_balance"
    assert units(lines[-1]["balance_after_usd"]) == closing
    reasons = {line["reason"] for line in lines}
    assert "usage_channel_revenue" in reasons, reasons
    assert any("adjustment" in reason for reason in reasons), reasons  # the demo launch bonus

    # Provider keys: added and deleted with plain forms; the key never shows again.
    browser.open("/portal/keys")
    assert "You have no provider keys." in browser.text()
    Select(browser.find("#key-provider")).select_by_visible_text("mock")
    browser.fill("API key", PORTAL_KEY)
    browser.click_button("Add key")
    assert browser.path == "/portal/keys?done=key_added", browser.text()
    assert PORTAL_KEY not in browser.driver.page_source
    assert "mock" in browser.text("#keys-table")
    browser.screenshot("portal-keys")
    browser.click_button("Delete")
    assert browser.path == "/portal/keys?done=key_deleted"
    assert "You have no provider keys." in browser.text()
    assert browser.console_errors() == []

    browser.click_button("Sign out")
    assert browser.path.startswith("/portal/sign-in")
    assert "You are signed out." in browser.text()
    browser.open("/portal/statement")
    assert browser.path.startswith("/portal/sign-in")


def test_a_key_the_vault_refuses_is_refused_in_words_and_nothing_is_added(
    browser: Browser, web_server: WebServer
) -> None:
    sign_in(browser, web_server.demo.developer_token)
    browser.open("/portal/keys")
    Select(browser.find("#key-provider")).select_by_visible_text("mock")
    browser.fill("API key", "not-a-mock-key")
    browser.fill("Models allowed (optional, comma-separated)", "mock-small")
    browser.click_button("Add key")
    assert "Not done:" in browser.text(".flash-error")
    assert "mock-" in browser.text(".flash-error")  # the rule, not the key
    assert "not-a-mock-key" not in browser.driver.page_source
    assert "You have no provider keys." in browser.text()
    assert browser.find("#key-models").get_attribute("value") == "mock-small"  # type: ignore[attr-defined]


def test_a_developer_cannot_reach_another_developers_data(
    browser_factory: object, web_server: WebServer, books: Books
) -> None:
    assert callable(browser_factory)
    demo = web_server.demo
    second: Browser = browser_factory(web_server)
    sign_in(second, books.second.token)

    # Their own earnings only: an app without usage, none of the first developer's apps.
    assert demo.seed.public_app_id not in second.text()
    assert page_units(second.text("#period-earnings")) == 0
    assert page_units(second.text("#balance-usd")) == 0
    # A query naming the other developer changes nothing: the session says who is asking.
    second.open(f"/portal?developer_id={demo.seed.developer_id}&wallet_id={demo.seed.developer_wallet_id}")
    assert demo.seed.public_app_id not in second.text()

    # The first developer's payout, by its id in the URL: exactly like an unknown payout.
    assert demo.payout_id is not None
    second.open("/portal/payouts")
    assert demo.payout_id not in second.driver.page_source
    second.open(f"/portal/payouts/{demo.payout_id}")
    theirs = second.text()
    second.open("/portal/payouts/00000000-0000-4000-8000-000000000000")
    unknown = second.text()
    assert "Payout was not found." in theirs
    assert theirs == unknown
    response = httpx.get(
        f"{web_server.base_url}/portal/payouts/{demo.payout_id}",
        cookies={"mf_portal": second.driver.get_cookie("mf_portal")["value"]},  # type: ignore[index]
        follow_redirects=False,
    )
    assert response.status_code == 404
    assert demo.developer_token not in response.text

    # Their statement: nothing of the first developer's wallet.
    second.open("/portal/statement")
    assert "Nothing was posted to your wallet in this period." in second.text()
    assert demo.payout_id not in second.driver.page_source

    # The first developer's key: not listed, and a delete form aimed at it (with the second
    # developer's own CSRF token) is refused like an unknown key; the key is still there.
    second.open("/portal/keys")
    assert books.first_key.masked not in second.driver.page_source
    second.driver.execute_script(
        "const form = document.createElement('form'); form.method = 'post'; form.action = arguments[0];"
        "const csrf = document.querySelector('input[name=csrf_token]').cloneNode(); form.appendChild(csrf);"
        "document.body.appendChild(form); form.submit();",
        f"/portal/keys/{books.first_key.id}/delete",
    )
    second.driver.find_element(By.CSS_SELECTOR, ".flash-error")
    assert "Provider key was not found." in second.text()
    remaining = developer_access.provider_keys_of(books.ctx, demo.seed.developer_id)
    assert [key.id for key in remaining] == [books.first_key.id]

    # A developer session opens no operator page.
    second.open("/console")
    assert second.path.startswith("/console/sign-in")
