"""``python -m bench.ab``: alternating rounds and the comparison it prints (no benchmark runs here)."""

from __future__ import annotations

from bench.ab import figures_of, order, summarise


def payload(value: float, ratio: float | None, *, extra: bool = False) -> dict[str, object]:
    figures: list[dict[str, object]] = [
        {
            "scenario": "B1",
            "engine": "postgresql",
            "metric": "  posting engine",
            "value": value,
            "ratio": ratio,
            "unit": "ev/s",
        },
    ]
    if extra:
        figures.append({"scenario": "B9", "engine": "sqlite", "metric": "pairs", "value": 1.0, "ratio": None})
    return {"figures": figures}


def test_the_order_flips_every_round() -> None:
    assert [order(n) for n in (1, 2, 3, 4)] == [("base", "head"), ("head", "base")] * 2


def test_figures_are_keyed_by_scenario_engine_and_metric() -> None:
    found = figures_of(payload(1500.0, 0.5))
    assert found == {("B1", "postgresql", "posting engine"): (1500.0, 0.5, "ev/s")}


def test_the_summary_shows_every_round_the_medians_and_the_same_run_ratios() -> None:
    runs = {
        "base": [figures_of(payload(v, r)) for v, r in ((1000, 0.40), (1200, 0.50), (1100, 0.45))],
        "head": [figures_of(payload(v, r, extra=True)) for v, r in ((1500, 0.60), (1300, 0.55), (1400, 0.58))],
    }
    header, line, *rest = summarise(runs)
    assert rest == []  # B9 was not in every run of both trees: left out
    assert "head/base" in header
    assert "1000 / 1200 / 1100" in line.replace(",", "")
    assert "1500 / 1300 / 1400" in line.replace(",", "")
    assert " 1.27 " in line  # median 1400 over median 1100
    assert "0.45 → 0.58" in line


def test_a_summary_of_no_runs_is_only_the_header() -> None:
    assert len(summarise({"base": [], "head": []})) == 1
