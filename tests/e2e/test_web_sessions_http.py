"""Web sign-in, sessions, CSRF and security headers over HTTP, on both databases (SPEC §21)."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import audit_log, developers, web_sessions
from modelfaucet.config import Settings
from modelfaucet.http.app import create_app
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.developer_tokens import issue_developer_token, revoke_developer_token
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import seed_demo_data
from modelfaucet.services.verify_audit import verify_audit_chain
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


# --- a portal session lives only while its developer token does ---------------------------------


def portal_developer(ctx: ServiceContext) -> tuple[str, str, str]:
    """A seeded developer, one token of theirs, and that token's id."""
    seed = seed_demo_data(ctx)
    issued = issue_developer_token(ctx, Actor("alice"), developer_id=seed.developer_id, name="web")
    return seed.developer_id, issued.token, issued.record.id


def assert_portal_session_ended(web: TestClient, database: Database) -> None:
    answer = web.get("/portal", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/portal/sign-in?next=/portal&done=session_ended"
    assert [s for s in stored_sessions(database) if s[1] == "developer"] == []


def test_the_portal_session_records_the_token_it_was_opened_with(
    web: TestClient, ctx: ServiceContext, database: Database
) -> None:
    _, token, token_id = portal_developer(ctx)
    sign_in(web, "portal", token)
    sign_in(web, "console", ALICE)
    with database.read() as conn:
        stored = dict(conn.execute(select(web_sessions.c.principal, web_sessions.c.developer_token_id)).all())
    assert stored == {"developer": token_id, "operator": None}


def test_revoking_the_token_ends_the_portal_session_at_the_next_request(
    web: TestClient, ctx: ServiceContext, database: Database
) -> None:
    developer_id, token, token_id = portal_developer(ctx)
    sign_in(web, "portal", token)
    assert web.get("/portal", follow_redirects=False).status_code == 200
    revoke_developer_token(ctx, Actor("alice"), developer_id=developer_id, token_id=token_id)
    assert_portal_session_ended(web, database)
    # and the stolen token cannot open a new one
    assert sign_in(web, "portal", token).status_code == 401  # type: ignore[attr-defined]


def test_a_form_on_a_revoked_tokens_session_changes_nothing(
    web: TestClient, ctx: ServiceContext, database: Database
) -> None:
    developer_id, token, token_id = portal_developer(ctx)
    sign_in(web, "portal", token)
    csrf = csrf_of(web.get("/portal").text)
    revoke_developer_token(ctx, Actor("alice"), developer_id=developer_id, token_id=token_id)
    answer = web.post("/portal/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and "done=session_ended" in answer.headers["location"]
    assert stored_sessions(database) == []
    with database.read() as conn:  # ended by the revocation, not signed out by the form
        actions = list(conn.execute(select(audit_log.c.action)).scalars())
    assert "web_session.sign_out" not in actions


def test_revoking_another_token_of_the_developer_leaves_the_session_alone(
    web: TestClient, ctx: ServiceContext, database: Database
) -> None:
    developer_id, token, _ = portal_developer(ctx)
    other = issue_developer_token(ctx, Actor("alice"), developer_id=developer_id, name="laptop").record.id
    sign_in(web, "portal", token)
    revoke_developer_token(ctx, Actor("alice"), developer_id=developer_id, token_id=other)
    assert web.get("/portal", follow_redirects=False).status_code == 200


def test_a_suspended_developers_session_ends_and_their_token_signs_in_no_more(
    web: TestClient, ctx: ServiceContext, database: Database
) -> None:
    developer_id, token, _ = portal_developer(ctx)
    sign_in(web, "portal", token)
    with database.transaction() as conn:  # no route suspends a developer yet: the status column does
        conn.execute(update(developers).where(developers.c.id == developer_id).values(status="suspended"))
    assert_portal_session_ended(web, database)
    assert sign_in(web, "portal", token).status_code == 401  # type: ignore[attr-defined]
    assert web.get("/v1/developer/me", headers={"authorization": f"Bearer {token}"}).status_code == 401


def test_a_developer_session_that_does_not_know_its_token_is_ended(
    web: TestClient, ctx: ServiceContext, database: Database
) -> None:
    developer_id, _, _ = portal_developer(ctx)
    session_id = "a-session-from-before-0010-" + "x" * 20
    now = datetime.now(UTC)
    with database.transaction() as conn:  # a row as revision 0009 wrote it: no token id
        conn.execute(
            insert(web_sessions).values(
                id_hash=hashlib.sha256(session_id.encode()).hexdigest(),
                principal="developer",
                subject=developer_id,
                csrf_secret="c" * 32,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=1),
            )
        )
    web.cookies.set("mf_portal", session_id, path="/portal")
    assert_portal_session_ended(web, database)


# --- sign-in and sign-out are audited ---------------------------------------------------------------


def audit_rows(database: Database) -> list[dict[str, object]]:
    with database.read() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.action.like("web_session.%")).order_by(audit_log.c.id))
        return [dict(row._mapping) for row in rows]


def test_sign_in_and_sign_out_of_both_doors_are_audited_without_the_token(
    web: TestClient, ctx: ServiceContext, database: Database
) -> None:
    developer_id, token, token_id = portal_developer(ctx)
    sign_in(web, "console", ALICE)
    web.post("/console/sign-out", data={"csrf_token": csrf_of(web.get("/console").text)})
    sign_in(web, "portal", token)
    web.post("/portal/sign-out", data={"csrf_token": csrf_of(web.get("/portal").text)})
    rows = audit_rows(database)
    assert [(r["actor"], r["action"], r["resource_type"]) for r in rows] == [
        ("alice", "web_session.sign_in", "web_session"),
        ("alice", "web_session.sign_out", "web_session"),
        (f"developer:{developer_id}", "web_session.sign_in", "web_session"),
        (f"developer:{developer_id}", "web_session.sign_out", "web_session"),
    ]
    assert rows[2]["details"] == {"principal": "developer", "developer_token_id": token_id}
    assert rows[0]["details"] == {"principal": "operator"}
    assert rows[0]["resource_id"] == rows[1]["resource_id"] != rows[2]["resource_id"] == rows[3]["resource_id"]
    assert all(r["request_id"] for r in rows)
    everything = repr(rows)
    for secret in (ALICE, token, token.removeprefix("mf_dev_")):
        assert secret not in everything and secret[:12] not in everything and secret[-12:] not in everything


def test_a_refused_sign_in_is_audited_as_anonymous_without_what_was_presented(
    web: TestClient, ctx: ServiceContext, database: Database
) -> None:
    developer_id, token, token_id = portal_developer(ctx)
    revoke_developer_token(ctx, Actor("alice"), developer_id=developer_id, token_id=token_id)
    wrong = "not-the-token-" + "q" * 30
    assert sign_in(web, "console", wrong).status_code == 401  # type: ignore[attr-defined]
    assert sign_in(web, "portal", token).status_code == 401  # type: ignore[attr-defined]
    rows = audit_rows(database)
    assert [(r["actor"], r["action"], r["details"]) for r in rows] == [
        ("anonymous", "web_session.sign_in_refused", {"principal": "operator"}),
        ("anonymous", "web_session.sign_in_refused", {"principal": "developer"}),
    ]
    assert all(r["resource_id"] is None for r in rows)
    everything = repr(rows)
    for secret in (wrong, token, token.removeprefix("mf_dev_")):
        assert secret not in everything and secret[:12] not in everything and secret[-12:] not in everything
    # a sign-in form posted without its CSRF cookie never reaches the check: nothing to audit
    web.cookies.clear()
    assert web.post("/console/sign-in", data={"token": wrong}, follow_redirects=False).status_code == 403
    assert len(audit_rows(database)) == 2


def test_sign_in_audit_rows_pass_the_reconciliation_checks_and_the_chain(
    web: TestClient, ctx: ServiceContext, database: Database
) -> None:
    _, token, _ = portal_developer(ctx)
    sign_in(web, "console", ALICE)
    sign_in(web, "portal", token)
    sign_in(web, "portal", "mf_dev_" + "n" * 43)
    report = reconcile_ledger(ctx).as_dict()
    assert {name: check["ok"] for name, check in report["checks"].items() if not check["ok"]} == {}
    assert verify_audit_chain(ctx).ok


def test_refused_sign_ins_are_rate_limited_so_guessing_cannot_flood_the_audit_log(
    database: Database, web_settings: Settings, clock: Clock
) -> None:
    app = create_app(with_settings(web_settings, rate_limit_per_minute=3), db=database, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as limited:
        answers = [sign_in(limited, area, "guess-" + "x" * 30).status_code for area in ("console",) * 4]  # type: ignore[attr-defined]
        portal = [sign_in(limited, "portal", "mf_dev_" + "y" * 43).status_code for _ in range(4)]  # type: ignore[attr-defined]
    assert answers == [401, 401, 401, 429] and portal == [401, 401, 401, 429]  # each door its own bucket
    assert len(audit_rows(database)) == 6  # the refused-and-limited attempts wrote nothing
