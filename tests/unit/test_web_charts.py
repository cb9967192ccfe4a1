"""Server-side SVG charts (http/web/charts.py): pure functions, checked by reading the SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from decimal import Decimal

import pytest

from modelfaucet.http.web.charts import ChartKind, Series, day_chart, nice_ceiling

SVG = "{http://www.w3.org/2000/svg}"
DAYS = [date(2026, 11, 1) + timedelta(days=n) for n in range(5)]


def parsed(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output


def test_line_chart_has_title_desc_axes_unit_and_one_point_per_day() -> None:
    chart = day_chart(
        "rev", "Revenue per day", DAYS, [Series("Revenue", [Decimal("1.5"), 0, 2, 0, Decimal("0.25")])], unit="USD"
    )
    root = parsed(str(chart.svg))
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "rev-title rev-desc"
    assert root.find(f"{SVG}title").text == "Revenue per day"  # type: ignore[union-attr]
    desc = root.find(f"{SVG}desc").text or ""  # type: ignore[union-attr]
    assert "2026-11-01 to 2026-11-05" in desc and "total 3.75 USD" in desc
    assert len(root.findall(f"{SVG}line[@class='axis']")) == 2
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "USD" in texts and "Day (UTC)" in texts
    assert "Nov 01" in texts and "Nov 05" in texts
    assert len(root.findall(f".//{SVG}circle")) == len(DAYS)
    assert root.find(f"{SVG}path[@class='line series-0']") is not None


def test_value_axis_tops_at_a_round_number_above_the_largest_value() -> None:
    chart = day_chart("c", "t", DAYS, [Series("a", [Decimal("0.7"), 0, 0, 0, 0])], unit="USD")
    ticks = [t.text for t in parsed(str(chart.svg)).iter(f"{SVG}text") if t.get("class") == "tick"]
    assert "1" in ticks and "0" in ticks  # 0.7 → axis up to 1


def test_counts_get_whole_number_ticks() -> None:
    chart = day_chart("c", "Calls", DAYS, [Series("calls", [1, 2, 3, 1, 0])], unit="calls", kind=ChartKind.BAR)
    ticks = [t.text or "" for t in parsed(str(chart.svg)).iter(f"{SVG}text") if t.get("class") == "tick"]
    value_ticks = [t for t in ticks if re.fullmatch(r"[0-9.,]+", t)]
    assert value_ticks and all("." not in t for t in value_ticks)


def test_bar_chart_draws_one_bar_per_day_and_series_with_a_tooltip() -> None:
    chart = day_chart(
        "b",
        "Calls",
        DAYS,
        [Series("x", [1, 2, 3, 4, 5]), Series("y", [0, 1, 0, 1, 0])],
        unit="calls",
        kind=ChartKind.BAR,
    )
    bars = parsed(str(chart.svg)).findall(f"{SVG}rect[@class]")
    data_bars = [b for b in bars if (b.get("class") or "").startswith("bar ")]
    assert len(data_bars) == 10
    assert data_bars[0].find(f"{SVG}title").text == "x, 2026-11-01: 1"  # type: ignore[union-attr]


def test_table_fallback_holds_the_same_numbers() -> None:
    chart = day_chart(
        "t",
        "Revenue",
        DAYS[:2],
        [Series("Revenue", [Decimal("1"), Decimal("2.5")])],
        unit="USD",
        format_value=lambda v: f"${Decimal(v):.2f}",
    )
    assert chart.table_header == ("Day", "Revenue (USD)")
    assert chart.table_rows == (("2026-11-01", "$1.00"), ("2026-11-02", "$2.50"))


def test_no_data_says_so() -> None:
    chart = day_chart("e", "Empty", DAYS, [Series("a", [0] * 5)], unit="USD")
    assert "No data in this period" in str(chart.svg)


def test_labels_are_escaped() -> None:
    chart = day_chart("x", "<script>alert(1)</script>", DAYS[:1], [Series("a&b", [1])], unit="<u>")
    svg = str(chart.svg)
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&amp;b" in svg
    parsed(svg)  # still well-formed


def test_negative_values_extend_the_axis_below_zero() -> None:
    chart = day_chart("n", "Net", DAYS[:2], [Series("net", [Decimal(-3), Decimal(2)])], unit="USD")
    ticks = [t.text for t in parsed(str(chart.svg)).iter(f"{SVG}text") if t.get("class") == "tick"]
    assert "-5" in ticks


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.7", "1"), ("1", "1"), ("1.2", "2"), ("2.1", "2.5"), ("3", "5"), ("7", "10"), ("120", "200"), ("0.03", "0.05")],
)
def test_nice_ceiling(value: str, expected: str) -> None:
    assert nice_ceiling(Decimal(value)) == Decimal(expected)


def test_series_must_match_the_days() -> None:
    with pytest.raises(ValueError, match="values for"):
        day_chart("m", "t", DAYS, [Series("a", [1, 2])], unit="x")
    with pytest.raises(ValueError, match="1 to"):
        day_chart("m", "t", DAYS, [], unit="x")


def test_counts_axis_always_reaches_the_largest_count() -> None:
    # 5 with four ticks: the axis goes to 8 (whole ticks of 2), never stops at 4 below the bar.
    chart = day_chart("c", "Calls", DAYS, [Series("calls", [3, 4, 5, 2, 0])], unit="calls", kind=ChartKind.BAR)
    root = parsed(str(chart.svg))
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "tick"]
    assert "8" in ticks and "2" in ticks
    plot_top = 36  # TOP: no bar may start above the plot
    bars = [b for b in root.findall(f"{SVG}rect") if (b.get("class") or "").startswith("bar ")]
    assert min(float(b.get("y") or 0) for b in bars) >= plot_top
