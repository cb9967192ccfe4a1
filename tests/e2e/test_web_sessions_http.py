"""Web sign-in, sessions, CSRF and security headers over HTTP, on both databases (SPEC §21)."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import web_sessions
from modelfaucet.config import Settings
from modelfaucet.http.app import create_app
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.developer_tokens import issue_developer_token
from modelfaucet.services.seed import seed_demo_data
from tests.conftest import with_settings

ALICE = "alice-web-token-0123456789abcdef-0123456789"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    return with_settings(settings, operator_tokens={"alice": ALICE}, web_session_idle_seconds=600)


@pytest.fixture
def web(database: Database, web_settings: Settings, clock: Clock) -> Iterator[TestClient]:
    with TestClient(create_app(web_settings, db=database, clock=clock), raise_server_exceptions=False) as test_client:
        yield test_client


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(web: TestClient, area: str, token: str, *, next_path: str | None = None) -> object:
    page = web.get(f"/{area}/sign-in")
    data = {"csrf_token": csrf_of(page.text), "token": token}
    if next_path is not None:
        data["next"] = next_path
    return web.post(f"/{area}/sign-in", data=data, follow_redirects=False)


def stored_sessions(database: Database) -> list[tuple[str, str, str]]:
    with database.read() as conn:
        rows = conn.execute(select(web_sessions.c.id_hash, web_sessions.c.principal, web_sessions.c.subject)).all()
    return [(r.id_hash, r.principal, r.subject) for r in rows]


def test_a_page_without_a_session_sends_you_to_sign_in(web: TestClient) -> None:
    answer = web.get("/console", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?next=/console"


def test_signing_in_sets_a_strict_http_only_cookie_and_stores_only_its_hash(
    web: TestClient, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = sign_in(web, "console", ALICE, next_path="/console")
    assert answer.status_code == 303 and answer.headers["location"] == "/console"  # type: ignore[attr-defined]
    cookie_header = next(
        v
        for k, v in answer.headers.multi_items()
        if k == "set-cookie" and v.startswith("mf_console=")  # type: ignore[attr-defined]
    )
    assert "HttpOnly" in cookie_header and "SameSite=strict" in cookie_header and "Path=/console" in cookie_header
    assert "Secure" not in cookie_header  # development: plain http on localhost works
    session_id = cookie_header.split(";")[0].split("=", 1)[1]
    assert stored_sessions(database) == [(hashlib.sha256(session_id.encode()).hexdigest(), "operator", "alice")]
    page = web.get("/console")
    assert page.status_code == 200 and "Signed in as <strong>alice</strong>" in page.text
    for text in (page.text, answer.headers.get("location", ""), caplog.text):  # type: ignore[attr-defined]
        assert ALICE not in text
    assert session_id not in caplog.text


def test_the_cookie_is_secure_in_production(database: Database, web_settings: Settings) -> None:
    production = with_settings(web_settings, environment="production")
    with TestClient(create_app(production, db=database), base_url="https://testserver") as client:
        answer = sign_in(client, "console", ALICE)
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith("mf_console="))  # type: ignore[attr-defined]
    assert "Secure" in cookie


def test_a_wrong_token_is_refused_in_words_and_never_echoed(web: TestClient, database: Database) -> None:
    wrong = "not-the-token-" + "z" * 30
    answer = sign_in(web, "console", wrong)
    assert answer.status_code == 401  # type: ignore[attr-defined]
    assert "That token was not accepted" in answer.text  # type: ignore[attr-defined]
    assert wrong not in answer.text  # type: ignore[attr-defined]
    assert "mf_console=" not in answer.headers.get("set-cookie", "")  # type: ignore[attr-defined]
    assert stored_sessions(database) == []


def test_sign_in_without_its_form_token_is_refused(web: TestClient, database: Database) -> None:
    answer = web.post("/console/sign-in", data={"token": ALICE}, follow_redirects=False)
    assert answer.status_code == 403
    assert "expired" in answer.text
    assert stored_sessions(database) == []


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(web: TestClient, database: Database) -> None:
    sign_in(web, "console", ALICE)
    page = web.get("/console")
    for data in ({}, {"csrf_token": "forged"}, {"csrf_token": csrf_of(page.text) + "x"}):
        refused = web.post("/console/sign-out", data=data, follow_redirects=False)
        assert refused.status_code == 403
        assert "security token is missing or out of date" in refused.text
        assert "Nothing was changed" in refused.text
    assert len(stored_sessions(database)) == 1
    assert web.get("/console", follow_redirects=False).status_code == 200


def test_sign_out_ends_the_session_on_the_server(web: TestClient, database: Database) -> None:
    sign_in(web, "console", ALICE)
    old_cookie = web.cookies.get("mf_console")
    page = web.get("/console")
    answer = web.post("/console/sign-out", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in?done=signed_out"
    assert stored_sessions(database) == []
    # The old cookie, replayed, opens nothing.
    web.cookies.clear()
    web.cookies.set("mf_console", old_cookie or "", path="/console")
    assert web.get("/console", follow_redirects=False).status_code == 303


def test_an_idle_session_ends(web: TestClient, database: Database, clock: Clock) -> None:
    sign_in(web, "console", ALICE)
    clock.now += timedelta(seconds=601)
    answer = web.get("/console", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?next=/console&done=session_ended"
    assert stored_sessions(database) == []
    assert "Your session has ended" in web.get(answer.headers["location"]).text


def test_a_developer_session_cannot_open_the_console(web: TestClient, ctx: ServiceContext, database: Database) -> None:
    seed = seed_demo_data(ctx)
    token = issue_developer_token(ctx, Actor("alice"), developer_id=seed.developer_id, name="web").token
    assert sign_in(web, "console", token).status_code == 401  # type: ignore[attr-defined]
    answer = sign_in(web, "portal", token)
    assert answer.status_code == 303  # type: ignore[attr-defined]
    portal_cookie = web.cookies.get("mf_portal")
    assert portal_cookie
    web.cookies.set("mf_console", portal_cookie, path="/console")
    assert web.get("/console", follow_redirects=False).status_code == 303
    assert [s[1:] for s in stored_sessions(database)] == [("developer", seed.developer_id)]
    # and an operator token does not open the portal
    assert sign_in(web, "portal", ALICE).status_code == 401  # type: ignore[attr-defined]


@pytest.mark.parametrize("target", ["//evil.example/console", "https://evil.example/", "/docs", "/console\\@evil"])
def test_sign_in_never_redirects_outside_the_area(web: TestClient, target: str) -> None:
    answer = sign_in(web, "console", ALICE, next_path=target)
    assert answer.headers["location"] == "/console"  # type: ignore[attr-defined]


def test_web_pages_carry_a_strict_csp_and_the_security_headers(web: TestClient) -> None:
    sign_in(web, "console", ALICE)
    for path in ("/console/sign-in", "/console", "/web/static/web.css", "/web/static/web.js"):
        answer = web.get(path)
        assert answer.status_code == 200, path
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
    page = web.get("/console").text
    assert "<style" not in page and "style=" not in page
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/web/static/web.js" defer>']
    assert '<html lang="en">' in page and 'href="#main"' in page


def test_unknown_assets_are_not_found(web: TestClient) -> None:
    assert web.get("/web/static/../../config.py").status_code == 404
    assert web.get("/web/static/nope.js").status_code == 404
