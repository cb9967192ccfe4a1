"""The developer portal over HTTP, on both databases (SPEC §21): a developer token signs in,
every page reads the signed-in developer's own money, the statement downloads as CSV,
provider keys are added and deleted only with the session's CSRF token (audited as
``developer:<id>``), a bad range is refused in words, and a second developer reaching for
the first one's payout, key or statement gets exactly what an unknown id gets.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import audit_log
from modelfaucet.config import Settings
from modelfaucet.domain.adjustments import AdjustmentKind, Direction
from modelfaucet.domain.earnings import SERIES_TOO_LONG
from modelfaucet.domain.money import UNITS_PER_USD, format_usd
from modelfaucet.http.app import create_app
from modelfaucet.http.web.render import usd
from modelfaucet.services import catalog, developer_access
from modelfaucet.services.apply_adjustment import AdjustWallet, apply_adjustment
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.developer_tokens import issue_developer_token
from modelfaucet.services.run_payouts import run_mock_payouts
from modelfaucet.services.seed import seed_demo_data

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
UNKNOWN = "00000000-0000-4000-8000-000000000000"
FIRST_KEY = "mock-first-developers-key-0123456789"
OPERATOR = Actor("alice")


@dataclass(frozen=True)
class Books:
    first_id: str
    first_token: str
    first_wallet_id: str
    payout_id: str
    first_key_id: str
    second_id: str
    second_token: str


@pytest.fixture
def books(ctx: ServiceContext) -> Books:
    seed = seed_demo_data(ctx)
    apply_adjustment(
        ctx,
        AdjustWallet(
            seed.developer_wallet_id, AdjustmentKind.ADJUSTMENT, Direction.CREDIT, 20 * UNITS_PER_USD, "bonus"
        ),
        actor=OPERATOR,
    )
    payout_id = run_mock_payouts(ctx, actor=OPERATOR, threshold_units=UNITS_PER_USD)[0].id
    first = seed.developer_id
    key = developer_access.add_provider_key_of(
        ctx, first, Actor(f"developer:{first}"), provider="mock", api_key=FIRST_KEY, base_url=None, models_allowed=None
    )
    second = catalog.create_developer(ctx, OPERATOR, name="Second", email="second@example.com").developer.id
    return Books(
        first_id=first,
        first_token=issue_developer_token(ctx, OPERATOR, developer_id=first, name="portal").token,
        first_wallet_id=seed.developer_wallet_id,
        payout_id=payout_id,
        first_key_id=key.id,
        second_id=second,
        second_token=issue_developer_token(ctx, OPERATOR, developer_id=second, name="portal").token,
    )


@pytest.fixture
def web(database: Database, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=database), raise_server_exceptions=False) as client:
        yield client


def sign_in(web: TestClient, token: str) -> None:
    web.cookies.clear()
    page = web.get("/portal/sign-in")
    csrf = CSRF.search(page.text)
    assert csrf
    answer = web.post("/portal/sign-in", data={"csrf_token": csrf.group(1), "token": token}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/portal"


def csrf_of(web: TestClient, page_path: str) -> str:
    found = CSRF.search(web.get(page_path).text)
    assert found
    return found.group(1)


def audit_actors(database: Database, action: str) -> list[str]:
    with database.read() as conn:
        return list(conn.execute(select(audit_log.c.actor).where(audit_log.c.action == action)).scalars())


def test_every_portal_page_reads_the_signed_in_developers_own_money(
    web: TestClient, books: Books, ctx: ServiceContext
) -> None:
    sign_in(web, books.first_token)
    for path in (
        "/portal",
        "/portal/payouts",
        f"/portal/payouts/{books.payout_id}",
        "/portal/statement",
        "/portal/keys",
    ):
        page = web.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html")
        assert books.first_token not in page.text
        assert FIRST_KEY not in page.text
    assert books.payout_id in web.get("/portal/payouts").text
    (key,) = developer_access.provider_keys_of(ctx, books.first_id)
    assert key.masked in web.get("/portal/keys").text  # masked, never the key (checked above)
    balance = developer_access.developer_balance(ctx, books.first_id)
    assert f'<p class="big" id="balance-usd">{usd(balance.balance_units)}</p>' in web.get("/portal").text


def test_the_header_names_the_signed_in_developer(web: TestClient, books: Books, ctx: ServiceContext) -> None:
    """By the developer's name, escaped, not by the id the session knows them by."""
    sign_in(web, books.second_token)
    for path in ("/portal", "/portal/payouts", "/portal/statement", "/portal/keys"):
        page = web.get(path).text
        assert "Signed in as <strong>Second</strong>" in page, path
        assert books.second_id not in page.split("</header>")[0], path
    odd = catalog.create_developer(ctx, OPERATOR, name="<b>Ann & Co</b>", email="ann@example.com").developer.id
    sign_in(web, issue_developer_token(ctx, OPERATOR, developer_id=odd, name="portal").token)
    header = web.get("/portal").text.split("</header>")[0]
    assert "Signed in as <strong>&lt;b&gt;Ann &amp; Co&lt;/b&gt;</strong>" in header
    assert "<b>Ann" not in header


def test_the_statement_downloads_as_csv_and_closes_at_the_wallets_balance(
    web: TestClient, books: Books, ctx: ServiceContext
) -> None:
    sign_in(web, books.first_token)
    answer = web.get("/portal/statement.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert (rows[0]["reason"], rows[-1]["reason"]) == ("opening_balance", "closing_balance")
    balance = developer_access.developer_balance(ctx, books.first_id)
    assert rows[-1]["balance_after_usd"] == format_usd(balance.balance_units)
    assert f"statement-{books.first_wallet_id}-" in answer.headers["content-disposition"]


def test_a_key_is_added_and_deleted_only_with_the_sessions_csrf_token_and_audited_as_the_developer(
    web: TestClient, books: Books, database: Database, ctx: ServiceContext
) -> None:
    sign_in(web, books.second_token)
    form = {"provider": "mock", "api_key": "mock-second-developers-key-0123", "base_url": "", "models_allowed": ""}
    refused = web.post("/portal/keys", data=form, follow_redirects=False)
    assert refused.status_code == 403
    assert "Nothing was changed" in refused.text
    assert developer_access.provider_keys_of(ctx, books.second_id) == []

    added = web.post("/portal/keys", data={**form, "csrf_token": csrf_of(web, "/portal/keys")}, follow_redirects=False)
    assert added.status_code == 303
    assert added.headers["location"] == "/portal/keys?done=key_added"
    (key,) = developer_access.provider_keys_of(ctx, books.second_id)
    assert audit_actors(database, "provider_key.create")[-1] == f"developer:{books.second_id}"
    page = web.get("/portal/keys?done=key_added").text
    assert key.masked in page and form["api_key"] not in page

    without = web.post(f"/portal/keys/{key.id}/delete", data={}, follow_redirects=False)
    assert without.status_code == 403
    deleted = web.post(
        f"/portal/keys/{key.id}/delete", data={"csrf_token": csrf_of(web, "/portal/keys")}, follow_redirects=False
    )
    assert deleted.status_code == 303
    assert developer_access.provider_keys_of(ctx, books.second_id) == []
    assert audit_actors(database, "provider_key.delete") == [f"developer:{books.second_id}"]


def test_a_key_the_vault_refuses_is_shown_in_words_and_never_echoed(web: TestClient, books: Books) -> None:
    sign_in(web, books.second_token)
    answer = web.post(
        "/portal/keys",
        data={"csrf_token": csrf_of(web, "/portal/keys"), "provider": "mock", "api_key": "sk-not-a-mock-key-123456"},
        follow_redirects=False,
    )
    assert answer.status_code == 400
    assert "Not done:" in answer.text and "mock-" in answer.text
    assert "sk-not-a-mock-key-123456" not in answer.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=yesterday", "from must be a date like 2026-11-01."),
        ("to=2026-13-01", "to must be a date like 2026-11-01."),
        ("from=2026-11-10&to=2026-11-01", "to must not be before from."),
        ("from=2020-01-01&to=2026-01-01", SERIES_TOO_LONG),
        ("from=9999-12-31&to=9999-12-31", "to must be 9999-12-30 or earlier."),  # no day after it
        ("to=%D9%A1%D9%A2", "to must be a date like 2026-11-01."),  # Arabic-Indic digits
    ],
)
def test_a_range_that_cannot_be_read_is_refused_in_words(
    web: TestClient, books: Books, query: str, message: str
) -> None:
    sign_in(web, books.first_token)
    answer = web.get(f"/portal?{query}")
    assert answer.status_code == 400
    assert message in answer.text
    assert 'role="alert"' in answer.text


def test_a_second_developer_gets_nothing_of_the_first_ones_not_even_by_id(
    web: TestClient, books: Books, ctx: ServiceContext
) -> None:
    sign_in(web, books.second_token)
    theirs = web.get(f"/portal/payouts/{books.payout_id}")
    unknown = web.get(f"/portal/payouts/{UNKNOWN}")
    assert theirs.status_code == unknown.status_code == 404
    assert "Payout was not found." in theirs.text
    assert theirs.text.replace(books.payout_id, UNKNOWN) == unknown.text.replace(books.payout_id, UNKNOWN)
    assert books.payout_id not in web.get("/portal/payouts").text
    assert books.first_id not in web.get(f"/portal?developer_id={books.first_id}").text

    statement = web.get(f"/portal/statement.csv?wallet_id={books.first_wallet_id}")
    rows = list(csv.DictReader(io.StringIO(statement.text)))
    assert [row["reason"] for row in rows] == ["opening_balance", "closing_balance"]
    assert books.first_wallet_id not in statement.headers["content-disposition"]

    csrf = csrf_of(web, "/portal/keys")
    gone = web.post(f"/portal/keys/{books.first_key_id}/delete", data={"csrf_token": csrf}, follow_redirects=False)
    never = web.post(f"/portal/keys/{UNKNOWN}/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert gone.status_code == never.status_code == 404
    assert "Provider key was not found." in gone.text
    assert [key.id for key in developer_access.provider_keys_of(ctx, books.first_id)] == [books.first_key_id]

    # The portal's cookie opens no operator page and no developer API route.
    assert web.get("/console", follow_redirects=False).status_code == 303
    assert web.get("/v1/developer/balance").status_code == 401
