"""``python -m bench.ab BASE [--only B1] [--engines postgresql] [--rounds 3] [--full]``.

Compare this tree with an older commit on a machine whose speed drifts between runs: the
two trees run the same scenarios alternately, round after round, and the order flips every
round (base first, then this tree first), so slow drift cancels instead of favouring one
side. Each run is an ordinary ``python -m bench`` in its own tree: BASE is checked out in a
temporary git worktree, and every process of its run (servers included) imports BASE's code
(``PYTHONPATH``). Quick mode unless ``--full``.

It prints, per figure, each round's value for both trees, the medians, this tree's median
over BASE's, and the same-run ratio medians (each figure against its baseline measured in
the same run). A difference smaller than the rounds' spread is noise, and the table shows
the spread so it can be judged.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .common import median

REPO = Path(__file__).resolve().parent.parent
Key = tuple[str, str, str]  # scenario, engine, metric


def figures_of(payload: Mapping[str, Any]) -> dict[Key, tuple[float, float | None, str]]:
    """(scenario, engine, metric) → (value, same-run ratio, unit) of one results file."""
    found: dict[Key, tuple[float, float | None, str]] = {}
    for figure in payload["figures"]:
        key = (figure["scenario"], figure["engine"], figure["metric"].strip())
        found[key] = (float(figure["value"]), figure.get("ratio"), figure.get("unit", ""))
    return found


def order(round_number: int) -> tuple[str, str]:
    """Which tree runs first in a round: BASE in odd rounds, this tree in even ones."""
    return ("base", "head") if round_number % 2 == 1 else ("head", "base")


def summarise(runs: Mapping[str, Sequence[Mapping[Key, tuple[float, float | None, str]]]]) -> list[str]:
    """The comparison table's lines, one per figure both trees reported in every round."""
    base, head = runs["base"], runs["head"]
    keys = [key for key in head[0] if all(key in run for run in (*base, *head))] if head else []
    lines = [
        f"{'figure':<58} {'base (each round)':<30} {'head (each round)':<30} {'head/base':>9} "
        f"{'same-run ratio base → head':>27}"
    ]
    for key in keys:
        base_values = [run[key][0] for run in base]
        head_values = [run[key][0] for run in head]
        unit = head[0][key][2]
        base_median, head_median = median(base_values), median(head_values)
        change = head_median / base_median if base_median else float("nan")
        ratios = _ratios(run[key][1] for run in base), _ratios(run[key][1] for run in head)
        label = f"{key[0]} {key[1]} {key[2]} ({unit})"
        lines.append(
            f"{label[:58]:<58} {_values(base_values):<30} {_values(head_values):<30} {change:>9.2f} "
            f"{ratios[0]:>12} → {ratios[1]:<12}"
        )
    return lines


def _values(values: Iterable[float]) -> str:
    return " / ".join(f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" for value in values)


def _ratios(values: Iterable[float | None]) -> str:
    present = [value for value in values if value is not None]
    return f"{median(present):.2f}" if present else "—"


def _run(tree: Path, args: argparse.Namespace) -> dict[Key, tuple[float, float | None, str]]:
    """One ``python -m bench`` in ``tree``; the figures of the results file it wrote."""
    command = [sys.executable, "-m", "bench", "--only", args.only, "--engines", args.engines]
    if not args.full:
        command.append("--quick")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree / "src"), str(tree)])}
    completed = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"bench failed in {tree}:\n{completed.stdout[-2000:]}\n{completed.stderr[-2000:]}")
    name = "quick.json" if not args.full else "partial.json"
    return figures_of(json.loads((tree / "bench" / "results" / name).read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("base", help="the commit to compare with (anything git rev-parse accepts)")
    parser.add_argument("--only", default="B1", help="comma-separated scenario ids (default B1)")
    parser.add_argument("--engines", default="postgresql", help="comma-separated engines (default postgresql)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs both trees once (default 3)")
    parser.add_argument("--full", action="store_true", help="full data instead of quick mode")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not args.only.strip():  # a complete full run would replace the README's latest.json
        parser.error("--only needs at least one scenario id")
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{args.base}^{{commit}}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if commit.returncode != 0:
        parser.error(f"not a commit: {args.base}")
    runs: dict[str, list[dict[Key, tuple[float, float | None, str]]]] = {"base": [], "head": []}
    with tempfile.TemporaryDirectory(prefix="mfbench-ab-") as folder:
        base_tree = Path(folder) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(base_tree), commit.stdout.strip()],
            cwd=REPO,
            check=True,
        )
        try:
            trees = {"base": base_tree, "head": REPO}
            for round_number in range(1, args.rounds + 1):
                for side in order(round_number):
                    print(f"round {round_number}: {side}…", file=sys.stderr, flush=True)
                    runs[side].append(_run(trees[side], args))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=REPO, check=False)
    print(f"base {commit.stdout.strip()[:10]} against this tree, {args.rounds} alternating rounds:")
    print("\n".join(summarise(runs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
