"""``python -m bench.readme_table``: the README's Performance table, from latest.json.

Printed as Markdown so the figures quoted in the README are exactly the last full run's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .common import RESULTS_DIR


def _number(value: float, unit: str) -> str:
    if unit in {"s"}:
        return f"{value:.3f} s"
    if unit in {"ms", "MB"}:
        return f"{value:,.1f} {unit}"
    return f"{value:,.0f} {unit}"


def render(path: Path) -> str:
    data = json.loads(path.read_text())
    machine = data["machine"]
    lines = [
        f"Last full run: {machine.get('cpu', '?')}, {machine.get('cpu_count')} cores, "
        f"{round(machine.get('memory_kb', 0) / 1024 / 1024)} GiB, Python {machine.get('python')}, "
        f"commit `{machine.get('git_commit', '')[:10]}`, {machine.get('time')}.",
        "",
        "| id | engine | scenario | figure | same-run baseline | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for figure in data["figures"]:
        baseline = ""
        if figure["baseline"] is not None:
            baseline = f"{_number(figure['baseline'], figure['unit'])} ({figure['baseline_label']})"
        ratio = f"{figure['ratio']:.2f}" if figure["ratio"] is not None else ""
        met = {True: "yes", False: "**no**", None: ""}[figure["met"]]
        lines.append(
            f"| {figure['scenario']} | {figure['engine']} | {figure['metric'].strip()} | "
            f"{_number(figure['value'], figure['unit'])} | {baseline} | {ratio} | {figure['target']} | {met} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS_DIR / "latest.json"))
