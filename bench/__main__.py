"""``python -m bench [--quick] [--only B1,B5] [--engines postgresql,sqlite]``.

Runs each scenario on fresh databases, prints one table (each figure beside the baseline
measured in the same run) and writes ``bench/results/latest.json`` (full mode) or
``bench/results/quick.json`` (``--quick``, the CI smoke run, under two minutes).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from .common import Figure, postgres_available, print_table, write_results

Scenario = Callable[..., list[Figure]]


def scenarios() -> dict[str, tuple[Scenario, tuple[str, ...]]]:
    """Scenario id → (runner, engines it runs on)."""
    from . import b1_posting, b5_reconcile, b6_usage_csv, b8_statements, b_http

    table: dict[str, tuple[Scenario, tuple[str, ...]]] = {
        "B1": (b1_posting.run, ("postgresql", "sqlite")),
        "B2": (b_http.run_b2, ("postgresql", "sqlite")),
        "B3": (b_http.run_b3, ("postgresql",)),
        "B4": (b_http.run_b4, ("postgresql",)),
        "B5": (b5_reconcile.run, ("postgresql", "sqlite")),
        "B6": (b6_usage_csv.run, ("postgresql", "sqlite")),
        "B7": (b_http.run_b7, ("postgresql",)),
        "B8": (b8_statements.run, ("postgresql", "sqlite")),
        "B9": (b_http.run_b9, ("postgresql", "sqlite")),
    }
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small data, for CI smoke (under two minutes)")
    parser.add_argument("--only", default="", help="comma-separated scenario ids, e.g. B1,B5")
    parser.add_argument("--engines", default="postgresql,sqlite", help="comma-separated engines")
    args = parser.parse_args(argv)

    engines = [e for e in args.engines.split(",") if e]
    if "postgresql" in engines and not postgres_available():
        print("PostgreSQL is not reachable: running the SQLite scenarios only", file=sys.stderr)
        engines.remove("postgresql")
    wanted = {s.strip().upper() for s in args.only.split(",") if s.strip()}
    figures: list[Figure] = []
    started = time.perf_counter()
    for scenario_id, (runner, supported) in scenarios().items():
        if wanted and scenario_id not in wanted:
            continue
        for engine in engines:
            if engine not in supported:
                continue
            print(f"running {scenario_id} on {engine}…", file=sys.stderr, flush=True)
            figures.extend(runner(engine, quick=args.quick))
    print_table(figures)
    # Only a complete full run replaces latest.json (the README quotes it); a partial run
    # (--only, fewer engines) or a quick one is written beside it.
    complete = not wanted and len(engines) == 2
    mode = "quick" if args.quick else ("full" if complete else "partial")
    path = write_results(figures, mode=mode)
    print(f"\n{len(figures)} figures in {time.perf_counter() - started:.1f} s, written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
