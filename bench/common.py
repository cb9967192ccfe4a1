"""Shared benchmark plumbing: fresh databases, machine facts, timing, the results table."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from modelfaucet.adapters.db import migrate
from modelfaucet.adapters.db.engine import make_engine, normalise_url

RESULTS_DIR = Path(__file__).with_name("results")
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class Figure:
    """One measured line: the scenario's figure, its baseline, their ratio and the target."""

    scenario: str
    engine: str
    metric: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    target: str = ""
    met: bool | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        return self.value / self.baseline


@contextmanager
def fresh_database(engine_name: str, label: str) -> Iterator[str]:
    """A new, migrated database for one scenario; dropped (or deleted) afterwards."""
    if engine_name == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"mfbench-{label}-") as folder:
            url = f"sqlite:///{folder}/bench.sqlite3"
            engine = make_engine(url)
            migrate.upgrade(engine)
            engine.dispose()
            yield url
        return
    base = make_url(normalise_url(os.environ.get("MODELFAUCET_BENCH_POSTGRES_URL", DEFAULT_PG_URL)))
    name = f"mfbench_{label}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_available() -> bool:
    url = normalise_url(os.environ.get("MODELFAUCET_BENCH_POSTGRES_URL", DEFAULT_PG_URL))
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception:
        return False
    return True


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The best (least disturbed) wall time of ``runs`` runs, in seconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        with open("/proc/meminfo") as meminfo:
            facts["memory_kb"] = int(meminfo.readline().split()[1])
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    facts["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        facts["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False, timeout=10
        ).stdout.strip()
    except OSError:
        facts["git_commit"] = ""
    return facts


def print_table(figures: list[Figure]) -> None:
    header = f"{'id':<4} {'engine':<10} {'metric':<34} {'value':>14} {'baseline':>14} {'ratio':>7}  target / met"
    print(header)
    print("-" * len(header))
    for f in figures:
        baseline = f"{f.baseline:,.3f}" if f.baseline is not None else "—"
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "—"
        met = "" if f.met is None else ("yes" if f.met else "NO")
        value = f"{f.value:,.3f} {f.unit}"
        print(f"{f.scenario:<4} {f.engine:<10} {f.metric:<34} {value:>14} {baseline:>14} {ratio:>7}  {f.target} {met}")


def write_results(figures: list[Figure], *, mode: str, path: Path | None = None) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    target = path or RESULTS_DIR / {"full": "latest.json", "quick": "quick.json"}.get(mode, "partial.json")
    payload = {
        "mode": mode,
        "machine": machine_facts(),
        "figures": [{**asdict(f), "ratio": f.ratio} for f in figures],
    }
    target.write_text(json.dumps(payload, indent=2) + "\n")
    return target
