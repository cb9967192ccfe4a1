"""usage.csv and revenue.csv over HTTP and the CLI: headers, rows, filters, neutralised cells."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert
from typer.testing import CliRunner

from modelfaucet.adapters.db.tables import app_features
from modelfaucet.cli.main import app as cli_app
from modelfaucet.domain.identity import new_id
from modelfaucet.domain.money import parse_usd
from modelfaucet.services import catalog
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.record_usage import record_usage
from modelfaucet.services.seed import SeedResult

from ..integration.usage_support import event

USAGE_HEADER = (
    "created_at,request_id,public_app_id,feature_key,route_mode,provider,model,input_tokens,output_tokens,"
    "upstream_cost_usd,retail_price_usd,channel_revenue_usd,platform_revenue_usd"
)
REVENUE_HEADER = (
    "public_app_id,developer_id,developer_email,total_calls,upstream_cost_usd,retail_price_usd,"
    "channel_revenue_usd,platform_revenue_usd"
)
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def at(ctx: ServiceContext, when: datetime) -> ServiceContext:
    return ServiceContext(db=ctx.db, settings=ctx.settings, clock=lambda: when)


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture
def usage_at_three_times(ctx: ServiceContext, seeded: SeedResult) -> None:
    for day in range(3):
        record_usage(at(ctx, T0 + timedelta(days=day)), event(f"day-{day}"))


@pytest.mark.parametrize(("name", "header"), [("usage", USAGE_HEADER), ("revenue", REVENUE_HEADER)])
def test_reports_have_exactly_the_spec_header_and_csv_content_type(
    client: TestClient, admin_headers: dict[str, str], seeded: SeedResult, name: str, header: str
) -> None:
    response = client.get(f"/v1/admin/reports/{name}.csv", headers=admin_headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.text.split("\r\n")[0] == header


def test_usage_csv_has_one_row_per_event_with_money_strings(
    client: TestClient, admin_headers: dict[str, str], usage_at_three_times: None
) -> None:
    rows = parse(client.get("/v1/admin/reports/usage.csv", headers=admin_headers).text)
    assert len(rows) == 4
    assert rows[1] == [
        "2025-03-01T12:00:00Z",
        "day-0",
        "app_pub_demo",
        "customer_reply",
        "platform",
        "mock",
        "mock-small",
        "1200",
        "300",
        "0.00105000",
        "0.00136500",
        "0.00012600",
        "0.00018900",
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["day-0", "day-1", "day-2"]),
        ("?from=2025-03-02T12:00:00Z", ["day-1", "day-2"]),
        ("?to=2025-03-02T12:00:00Z", ["day-0"]),
        ("?from=2025-03-02&to=2025-03-03", ["day-1"]),
        ("?from=2025-03-02T14:00:00%2B02:00", ["day-1", "day-2"]),
    ],
)
def test_usage_csv_filters_by_from_inclusive_and_to_exclusive(
    client: TestClient, admin_headers: dict[str, str], usage_at_three_times: None, query: str, expected: list[str]
) -> None:
    rows = parse(client.get(f"/v1/admin/reports/usage.csv{query}", headers=admin_headers).text)
    assert [row[1] for row in rows[1:]] == expected


def test_revenue_csv_has_one_row_per_app_with_totals_and_honours_filters(
    client: TestClient, admin_headers: dict[str, str], usage_at_three_times: None, seeded: SeedResult
) -> None:
    rows = parse(client.get("/v1/admin/reports/revenue.csv", headers=admin_headers).text)
    assert rows[1] == [
        "app_pub_demo",
        seeded.developer_id,
        "dev@example.com",
        "3",
        "0.00315000",
        "0.00409500",
        "0.00037800",
        "0.00056700",
    ]
    filtered = parse(client.get("/v1/admin/reports/revenue.csv?from=2025-04-01", headers=admin_headers).text)
    assert filtered[1][3:] == ["0", "0.00000000", "0.00000000", "0.00000000", "0.00000000"]


@pytest.mark.parametrize("query", ["?from=yesterday", "?to=2025-13-01", "?from=2025-03-02&to=2025-03-01"])
def test_a_bad_time_filter_is_400_before_any_csv(
    client: TestClient, admin_headers: dict[str, str], seeded: SeedResult, query: str
) -> None:
    response = client.get(f"/v1/admin/reports/usage.csv{query}", headers=admin_headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_reports_are_admin_only_and_unknown_reports_404(
    client: TestClient, admin_headers: dict[str, str], gateway_headers: dict[str, str], seeded: SeedResult
) -> None:
    assert client.get("/v1/admin/reports/usage.csv").status_code == 401
    assert client.get("/v1/admin/reports/usage.csv", headers=gateway_headers).status_code == 401
    assert client.get("/v1/admin/reports/secrets.csv", headers=admin_headers).status_code == 404


def test_a_formula_looking_model_name_is_neutralised(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    evil = '=HYPERLINK("http://evil.example","x")'
    catalog.put_model_price(
        ctx,
        Actor("alice"),
        provider="mock",
        model=evil.replace(" ", ""),
        input_per_1m_units=parse_usd("1"),
        output_per_1m_units=0,
        cached_per_1m_units=0,
    )
    # The catalogue refuses such a feature key today; a row written before that rule may hold one.
    with ctx.db.transaction() as conn:
        conn.execute(
            insert(app_features).values(
                id=new_id(),
                app_id=seeded.app_id,
                feature_key="@feature",
                display_name="Legacy",
                created_at=T0,
                updated_at=T0,
            )
        )
    assert record_usage(ctx, event("evil", model=evil.replace(" ", ""), feature_key="@feature")).ok
    rows = parse(client.get("/v1/admin/reports/usage.csv", headers=admin_headers).text)
    assert rows[1][6] == "'" + evil.replace(" ", "")
    assert rows[1][3] == "'@feature"


def test_the_cli_writes_the_same_report_to_a_file(
    db_url: str, usage_at_three_times: None, client: TestClient, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "usage.csv"
    result = CliRunner().invoke(
        cli_app,
        ["reports", "usage", "-o", str(out), "--from", "2025-03-02"],
        env={"DATABASE_URL": db_url},
    )
    assert result.exit_code == 0, result.output
    expected = client.get("/v1/admin/reports/usage.csv?from=2025-03-02", headers=admin_headers).content
    assert out.read_bytes() == expected
    revenue = tmp_path / "revenue.csv"
    assert (
        CliRunner().invoke(cli_app, ["reports", "revenue", "-o", str(revenue)], env={"DATABASE_URL": db_url}).exit_code
        == 0
    )
    assert revenue.read_text().startswith(REVENUE_HEADER)


def test_the_cli_refuses_an_unknown_report_or_a_bad_date(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli_app, ["reports", "nope"], env={"DATABASE_URL": db_url}).exit_code == 2
    assert runner.invoke(cli_app, ["reports", "usage", "--from", "soon"], env={"DATABASE_URL": db_url}).exit_code == 2
