"""Server-side SVG charts of values per day (SPEC §21): readable without JavaScript.

:func:`day_chart` is a pure function: days, one or more series of numbers, a unit → a
:class:`Chart` holding the SVG (axes with tick labels, the unit on the value axis, a
``<title>``/``<desc>`` that say what it shows, ``role="img"``) and the same numbers as a
table (``table_header``/``table_rows``), which the ``chart`` macro of
``templates/macros.html`` renders next to it. Colours come from classes in ``web.css``
(``series-0``…), never from inline styles, so the page's CSP holds.

Values are :class:`~decimal.Decimal` (money in dollars, not units) or ints (counts); the
caller formats table cells with ``format_value``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from html import escape

from markupsafe import Markup

WIDTH = 720
HEIGHT = 280
LEFT = 80  # room for value labels
RIGHT = 16
TOP = 36  # room for the legend
BOTTOM = 44  # room for day labels
MAX_SERIES = 3


class ChartKind(StrEnum):
    LINE = "line"
    BAR = "bar"


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    values: Sequence[Decimal | int]  # one per day, in the order of the chart's days


@dataclass(frozen=True, slots=True)
class Chart:
    id: str
    title: str
    unit: str
    svg: Markup
    table_header: tuple[str, ...]
    table_rows: tuple[tuple[str, ...], ...]


def default_format(value: Decimal | int) -> str:
    return f"{value:,}"


def nice_ceiling(value: Decimal) -> Decimal:
    """The smallest of 1, 2, 2.5, 5 × 10^n that is ≥ value (value > 0): a round top for the axis."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for _ in range(2):
        base = Decimal(10) ** exponent
        for step in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
            if step * base >= value:
                return (step * base).normalize()
        exponent += 1
    return value.to_integral_value(rounding=ROUND_CEILING)  # pragma: no cover - unreachable


def _fmt_tick(value: Decimal) -> str:
    text = f"{value.normalize():,f}"
    return text


def day_chart(
    chart_id: str,
    title: str,
    days: Sequence[date],
    series: Sequence[Series],
    *,
    unit: str,
    kind: ChartKind = ChartKind.LINE,
    description: str | None = None,
    format_value: Callable[[Decimal | int], str] = default_format,
    ticks: int = 4,
) -> Chart:
    """A chart of ``series`` over ``days``; each series has one value per day."""
    if not series or len(series) > MAX_SERIES:
        raise ValueError(f"a chart draws 1 to {MAX_SERIES} series")
    for one in series:
        if len(one.values) != len(days):
            raise ValueError(f"series {one.label!r} has {len(one.values)} values for {len(days)} days")
    values = [Decimal(v) for one in series for v in one.values]
    top = nice_ceiling(max(values, default=Decimal(0)))
    if all(isinstance(v, int) for one in series for v in one.values):
        # Counts: whole-number ticks only.
        whole = int(top.to_integral_value(rounding=ROUND_CEILING))
        top = Decimal(max(ticks, (whole + ticks - 1) // ticks * ticks))
    bottom = min(Decimal(0), min(values, default=Decimal(0)))
    if bottom < 0:
        bottom = -nice_ceiling(-bottom)
    span = top - bottom
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM

    def y(value: Decimal) -> float:
        return TOP + float((top - value) / span) * plot_h

    def x_center(index: int) -> float:
        slot = plot_w / max(len(days), 1)
        return LEFT + slot * index + slot / 2

    desc = description or _describe(title, days, series, unit, format_value)
    ids = (f"{chart_id}-title", f"{chart_id}-desc")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-labelledby="{ids[0]} {ids[1]}">',
        f'<title id="{ids[0]}">{escape(title)}</title>',
        f'<desc id="{ids[1]}">{escape(desc)}</desc>',
    ]
    # value axis: grid lines and labels, the unit above it
    for i in range(ticks + 1):
        value = bottom + span * Decimal(i) / Decimal(ticks)
        ty = y(value)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{ty:.1f}" x2="{WIDTH - RIGHT}" y2="{ty:.1f}"/>')
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end">{escape(_fmt_tick(value))}</text>'
        )
    parts.append(f'<text class="unit" x="{LEFT - 6}" y="{TOP - 14}" text-anchor="end">{escape(unit)}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>')
    parts.append(
        f'<line class="axis" x1="{LEFT}" y1="{y(Decimal(0)):.1f}" x2="{WIDTH - RIGHT}" y2="{y(Decimal(0)):.1f}"/>'
    )
    # day axis: at most ~8 labels
    every = max(1, -(-len(days) // 8))
    for index, day in enumerate(days):
        last = index == len(days) - 1
        if (index % every == 0 and (last or len(days) - 1 - index >= every)) or last:
            parts.append(
                f'<text class="tick" x="{x_center(index):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                f"{day.strftime('%b %d')}</text>"
            )
    parts.append(
        f'<text class="unit" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">Day (UTC)</text>'
    )
    if not days or all(v == 0 for v in values):
        parts.append(
            f'<text class="empty" x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" text-anchor="middle">'
            "No data in this period</text>"
        )
    slot = plot_w / max(len(days), 1)
    for n, one in enumerate(series):
        css = f"series-{n}"
        if kind is ChartKind.BAR:
            bar_w = max(1.0, slot * 0.8 / len(series))
            for index, raw in enumerate(one.values):
                value = Decimal(raw)
                x0 = x_center(index) - slot * 0.4 + bar_w * n
                y0, y1 = sorted((y(value), y(Decimal(0))))
                parts.append(
                    f'<rect class="bar {css}" x="{x0:.1f}" y="{y0:.1f}" width="{bar_w:.1f}" height="{y1 - y0:.1f}">'
                    f"<title>{_point_label(one, days[index], raw, format_value)}</title></rect>"
                )
        else:
            points = " L ".join(f"{x_center(i):.1f} {y(Decimal(v)):.1f}" for i, v in enumerate(one.values))
            if points:
                parts.append(f'<path class="line {css}" d="M {points}"/>')
            for index, raw in enumerate(one.values):
                parts.append(
                    f'<circle class="{css}" cx="{x_center(index):.1f}" cy="{y(Decimal(raw)):.1f}" r="3">'
                    f"<title>{_point_label(one, days[index], raw, format_value)}</title></circle>"
                )
        # legend
        lx = LEFT + n * 180
        parts.append(f'<rect class="{css}" x="{lx}" y="8" width="12" height="12"/>')
        parts.append(f'<text class="legend" x="{lx + 18}" y="18">{escape(one.label)}</text>')
    parts.append("</svg>")
    header = ("Day", *(f"{one.label} ({unit})" for one in series))
    rows = tuple(
        (day.isoformat(), *(format_value(one.values[index]) for one in series)) for index, day in enumerate(days)
    )
    return Chart(chart_id, title, unit, Markup("".join(parts)), header, rows)  # noqa: S704 - every text escaped


def _point_label(one: Series, day: date, raw: Decimal | int, format_value: Callable[[Decimal | int], str]) -> str:
    return f"{escape(one.label)}, {day.isoformat()}: {escape(format_value(raw))}"


def _describe(
    title: str,
    days: Sequence[date],
    series: Sequence[Series],
    unit: str,
    format_value: Callable[[Decimal | int], str],
) -> str:
    if not days:
        return f"{title}: no days in the period."
    period = f"{days[0].isoformat()} to {days[-1].isoformat()}"
    totals = "; ".join(
        f"{one.label}: total {format_value(sum((Decimal(v) for v in one.values), Decimal(0)))} {unit}" for one in series
    )
    return f"{title}, per day from {period}. {totals}."
