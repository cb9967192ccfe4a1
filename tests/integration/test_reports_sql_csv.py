"""CSV reports formatted by PostgreSQL are byte-identical to the Python CSV writer.

On PostgreSQL every registered report has a SQL path (``COPY (SELECT line …) TO STDOUT``);
these tests feed it adversarial data — formula signs and their full-width and superscript
forms behind every character a spreadsheet skips, tabs, CR/LF, quotes, commas, empty and
NULL cells, signed numbers, huge and negative amounts, timestamps from year 1 to 9998 with
and without microseconds — and compare the bytes with the Python writer's. On SQLite the
repository has no SQL path and the Python writer is used.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, text

from modelfaucet.adapters.csvout import neutralise
from modelfaucet.adapters.db import csv_sql
from modelfaucet.adapters.db.tables import apps, developers, payouts, usage_events
from modelfaucet.domain.payouts import PayoutStatus
from modelfaucet.domain.rating import RouteMode
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.reports import REPORTS, stream_report, stream_report_python
from modelfaucet.services.seed import SeedResult

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
# Cells a spreadsheet would run, or nearly: signs behind skipped characters, compatibility
# forms of the signs, plain and not-so-plain numbers, CSV specials.
ADVERSARIAL = (
    "",
    "=1+1",
    "+1",
    "-1",
    "-2.50000000",
    "-1+2",
    "-2.5e3",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
    "\n=1",
    " =1",
    "\u200b=1",
    "\ufeff@x",
    "\u2060\u200c\u200d-x",
    "\u3000+x",
    "\u0085=x",
    "\x1c\x1d=x",
    "\uff1dHYPERLINK(1)",
    "\uff0b1",
    "\uff0d1",
    "\uff20x",
    "\ufe62x",
    "\ufe63x",
    "\ufe66x",
    "\u207ax",
    "\u208cx",
    "\U000e0001=x",
    'a,"b"',
    '"=1"',
    "a\r\nb",
    "a\nb",
    "x\r",
    ",",
    '"',
    "'=1",
    "\u00e9t\u00e9",
    "\U0001f600",
    "12",
    "1.5",
    ".5",
    "\\.",
    "NULL",
)
TEXT = st.one_of(
    st.sampled_from(ADVERSARIAL),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12),
    st.builds(
        str.__add__,
        st.sampled_from(ADVERSARIAL),
        st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=6),
    ),
)
TIMES = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)),
    st.sampled_from(
        [
            datetime(1, 1, 2, tzinfo=UTC),
            datetime(1970, 1, 1, tzinfo=UTC),
            datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            datetime(2025, 1, 1, 0, 0, 0, 500000, tzinfo=UTC),
            datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        ]
    ),
)
AMOUNT = st.one_of(
    st.integers(BIGINT_MIN, BIGINT_MAX),
    st.integers(-(10**10), 10**10),
    st.sampled_from([0, 1, -1, 99_999_999, 100_000_000, -100_000_000, -50_000_000, BIGINT_MAX, BIGINT_MIN]),
)


def _postgres_only(ctx: ServiceContext) -> None:
    if ctx.db.dialect != "postgresql":
        pytest.skip("the SQL path is PostgreSQL's")


def _python_csv_cell(value: str) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([neutralise(value), ""])
    return out.getvalue()[:-3]  # the cell alone: drop ",\r\n"


def test_sqlite_keeps_the_python_writer_and_postgresql_has_a_sql_path(ctx: ServiceContext) -> None:
    with ctx.reader() as uow:
        for name in REPORTS:
            lines = uow.reports.report_csv_lines(name, None, None)
            if ctx.db.dialect == "postgresql":
                assert lines is not None, name
                assert b"".join(lines) == b""  # an empty database: no data lines
            else:
                assert lines is None, name


def test_a_report_streams_without_jit_and_leaves_the_setting_to_its_transaction(ctx: ServiceContext) -> None:
    """The report's query is compiled by no JIT (its cost is above ``jit_above_cost``; JIT
    cost more than it saved, see csv_sql.SESSION_SETTINGS), and only inside its transaction."""
    _postgres_only(ctx)
    with ctx.reader() as uow:
        before = uow.connection.execute(text("SELECT current_setting('jit')")).scalar_one()
        lines = uow.reports.report_csv_lines("usage", None, None)
        assert lines is not None
        assert b"".join(lines) == b""
        during = uow.connection.execute(text("SELECT current_setting('jit'), current_setting('DateStyle')")).one()
    with ctx.reader() as uow:
        after = uow.connection.execute(text("SELECT current_setting('jit')")).scalar_one()
    assert tuple(during) == ("off", "ISO, YMD")
    assert after == before


def test_every_code_point_is_neutralised_and_quoted_as_in_python(ctx: ServiceContext) -> None:
    """All of Unicode, in front of a formula sign, a digit and a letter, in one query."""
    _postgres_only(ctx)
    suffixes = ("=1", "1", "a", '"')
    cell = csv_sql.text_cell("s.v")
    query = text(
        f"SELECT s.cp, s.k, {cell} AS out FROM (SELECT g AS cp, k, chr(g) || (ARRAY[:a, :b, :c, :d])[k] AS v "
        "FROM generate_series(1, :top) g, generate_series(1, 4) k WHERE g NOT BETWEEN 55296 AND 57343) s "
        f"WHERE {cell} <> s.v"
    )
    with ctx.db.engine.connect() as conn:
        changed = {
            (int(row.cp), suffixes[row.k - 1]): row.out
            for row in conn.execute(
                query, {"a": suffixes[0], "b": suffixes[1], "c": suffixes[2], "d": suffixes[3], "top": sys.maxunicode}
            )
        }
    expected: dict[tuple[int, str], str] = {}
    for code in range(1, sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        for suffix in suffixes:
            value = chr(code) + suffix
            written = _python_csv_cell(value)
            if written != value:
                expected[code, suffix] = written
    assert len(expected) > 300  # the skipped characters and the signs, at least
    assert changed == expected


@pytest.fixture
def clean_reports(ctx: ServiceContext, seeded: SeedResult) -> Iterator[SeedResult]:
    _postgres_only(ctx)
    yield seeded


def _compare_all(ctx: ServiceContext, *, start: datetime | None = None, end: datetime | None = None) -> None:
    with ctx.reader() as uow:
        assert uow.reports.report_csv_lines("usage", start, end) is not None  # the SQL path runs
    for name in REPORTS:
        via_sql = b"".join(stream_report(ctx, name, start=start, end=end))
        via_python = b"".join(stream_report_python(ctx, name, start=start, end=end))
        assert via_sql == via_python, name


@st.composite
def usage_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows = []
    for n in range(draw(st.integers(1, 6))):
        upstream, channel = draw(AMOUNT), draw(AMOUNT)
        platform = draw(st.one_of(st.just(0), AMOUNT))
        # The CHECK adds them in BIGINT: every partial sum must fit.
        assume(BIGINT_MIN <= upstream + channel <= BIGINT_MAX)
        assume(BIGINT_MIN <= upstream + channel + platform <= BIGINT_MAX)
        rows.append(
            {
                "request_id": draw(TEXT) + f"\u2063{n}",  # unique; an invisible separator keeps the start
                "public_app_id": draw(TEXT),
                "feature_key": draw(TEXT),
                "route_mode": str(draw(st.sampled_from(list(RouteMode)))),
                "provider": draw(TEXT),
                "model": draw(TEXT),
                "input_tokens": draw(AMOUNT),
                "output_tokens": draw(AMOUNT),
                "upstream_cost_units": upstream,
                "channel_revenue_units": channel,
                "platform_revenue_units": platform,
                "retail_price_units": upstream + channel + platform,
                "created_at": draw(TIMES),
            }
        )
    return rows


@st.composite
def parties(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Developers with an app and a payout each: emails, public app ids, payout fields."""
    drawn = []
    for n in range(draw(st.integers(0, 3))):
        drawn.append(
            {
                "email": draw(TEXT) + f"\u2063{n}",
                "public_app_id": draw(TEXT) + f"\u2063{n}",
                "amount_units": draw(st.integers(1, BIGINT_MAX)),
                "status": str(draw(st.sampled_from(list(PayoutStatus)))),
                "provider": draw(TEXT)[:32],
                "provider_payout_id": draw(st.one_of(st.none(), TEXT)),
                "created_at": draw(TIMES),
                "updated_at": draw(TIMES),
            }
        )
    return drawn


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=usage_rows(), people=parties())
def test_reports_formatted_by_postgresql_are_byte_identical(
    ctx: ServiceContext, clean_reports: SeedResult, rows: list[dict[str, Any]], people: list[dict[str, Any]]
) -> None:
    seeded = clean_reports
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(len(rows))]
    try:
        with ctx.db.transaction() as conn:
            for n, person in enumerate(people):
                developer_id = f"00000000-0000-4000-9000-{n:012d}"
                conn.execute(
                    insert(developers).values(
                        id=developer_id, name="d", email=person["email"], created_at=person["created_at"]
                    )
                )
                conn.execute(
                    insert(apps).values(
                        id=f"00000000-0000-4000-a000-{n:012d}",
                        public_app_id=person["public_app_id"],
                        developer_id=developer_id,
                        name="a",
                        default_revenue_share_bps=0,
                        created_at=person["created_at"],
                    )
                )
                conn.execute(
                    insert(payouts).values(
                        id=f"00000000-0000-4000-b000-{n:012d}",
                        developer_id=developer_id,
                        account_id=seeded.developer_wallet_id,
                        amount_units=person["amount_units"],
                        status=person["status"],
                        provider=person["provider"],
                        provider_payout_id=person["provider_payout_id"],
                        created_by="test",
                        created_at=person["created_at"],
                        updated_at=person["updated_at"],
                    )
                )
            if rows:
                conn.execute(
                    insert(usage_events),
                    [
                        {
                            **row,
                            "id": row_id,
                            "request_hash": "0" * 64,
                            "app_id": seeded.app_id,
                            "end_user_id": seeded.end_user_id,
                            "cached_tokens": 0,
                            "rating_snapshot": {},
                        }
                        for row_id, row in zip(ids, rows, strict=True)
                    ],
                )
        _compare_all(ctx)
        times = sorted(row["created_at"] for row in rows)
        _compare_all(ctx, start=times[0], end=times[-1])
    finally:
        with ctx.db.transaction() as conn:
            conn.execute(delete(usage_events).where(usage_events.c.id.in_(ids)))
            conn.execute(delete(payouts).where(payouts.c.id.like("00000000-0000-4000-b000-%")))
            conn.execute(delete(apps).where(apps.c.id.like("00000000-0000-4000-a000-%")))
            conn.execute(delete(developers).where(developers.c.id.like("00000000-0000-4000-9000-%")))
