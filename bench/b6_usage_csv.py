"""B6: ``usage.csv`` of many rows over HTTP, beside the engine's own bulk export of the
same columns without any of the report's formatting (PostgreSQL ``COPY (SELECT …) TO
STDOUT WITH CSV``; on SQLite a bare ``sqlite3`` cursor into ``csv.writer``), and the
server's peak RSS (VmHWM). On PostgreSQL the report itself is formatted by SQL and streamed
from ``COPY … (FORMAT binary)`` (:mod:`modelfaucet.adapters.db.csv_sql`).

The rows are synthetic usage events loaded by COPY (PostgreSQL) or executemany (SQLite),
all of the demo app and end user, one second apart.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.engine import normalise_url
from modelfaucet.config import Settings
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.seed import seed_demo_data

from .b_http import ADMIN_TOKEN, _server_env
from .common import Figure, fresh_database
from .loadgen import bench_server

COLUMNS = (
    "id, request_id, request_hash, app_id, public_app_id, end_user_id, feature_key, route_mode, provider, model, "
    "input_tokens, output_tokens, cached_tokens, upstream_cost_units, retail_price_units, channel_revenue_units, "
    "platform_revenue_units, gateway_fee_units, rating_snapshot, created_at"
)
EXPORT_SELECT = (
    "SELECT created_at, request_id, public_app_id, feature_key, route_mode, provider, model, input_tokens, "
    "output_tokens, upstream_cost_units, retail_price_units, channel_revenue_units, platform_revenue_units "
    "FROM usage_events ORDER BY created_at, request_id"
)


def _rows(url: str, count: int) -> Any:
    db = Database.from_url(url)
    seeded = seed_demo_data(ServiceContext(db=db, settings=Settings(database_url=url)))
    db.dispose()
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(count):
        yield (
            str(uuid.uuid4()),
            f"b6-{n:08d}",
            "0" * 64,
            seeded.app_id,
            seeded.public_app_id,
            seeded.end_user_id,
            seeded.feature_key,
            "platform",
            "mock",
            "mock-small",
            1200,
            300,
            0,
            105_000,
            136_500,
            12_600,
            18_900,
            0,
            "{}",
            start + timedelta(seconds=n),
        )


def load(url: str, count: int) -> None:
    raw_url = normalise_url(url)
    if raw_url.startswith("sqlite"):
        conn = sqlite3.connect(make_url(raw_url).database or "")
        placeholders = ", ".join("?" * 20)
        conn.executemany(
            f"INSERT INTO usage_events ({COLUMNS}) VALUES ({placeholders})",
            ((*row[:-1], row[-1].strftime("%Y-%m-%d %H:%M:%S.%f")) for row in _rows(url, count)),
        )
        conn.commit()
        conn.execute("ANALYZE")
        conn.close()
        return
    with psycopg.connect(_libpq(url)) as conn:
        with conn.cursor() as cursor, cursor.copy(f"COPY usage_events ({COLUMNS}) FROM STDIN") as copy:
            for row in _rows(url, count):
                copy.write_row(row)
    db = Database.from_url(url)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE usage_events"))
    db.dispose()


def _libpq(url: str) -> str:
    return make_url(normalise_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


def bulk_export(url: str) -> tuple[int, float]:
    """(bytes, seconds) of the engine's own export of the same columns."""
    raw_url = normalise_url(url)
    started = time.perf_counter()
    size = 0
    if raw_url.startswith("sqlite"):
        conn = sqlite3.connect(make_url(raw_url).database or "")
        out = io.StringIO()
        writer = csv.writer(out)
        for row in conn.execute(EXPORT_SELECT):
            writer.writerow(row)
            if out.tell() > 65536:
                size += len(out.getvalue())
                out.seek(0)
                out.truncate(0)
        size += len(out.getvalue())
        conn.close()
    else:
        with psycopg.connect(_libpq(url)) as conn:
            with conn.cursor() as cursor, cursor.copy(f"COPY ({EXPORT_SELECT}) TO STDOUT WITH CSV") as copy:
                for chunk in copy:
                    size += len(chunk)
    return size, time.perf_counter() - started


def in_process(url: str) -> tuple[float, float]:
    """(seconds of the report's own path, seconds of the Python CSV writer) in this process,
    both discarding the bytes: the formatting alone, without HTTP."""
    from modelfaucet.services.reports import stream_report, stream_report_python

    db = Database.from_url(url)
    ctx = ServiceContext(db=db, settings=Settings(database_url=url))
    timings = []
    for stream in (stream_report, stream_report_python):
        started = time.perf_counter()
        for _chunk in stream(ctx, "usage"):
            pass
        timings.append(time.perf_counter() - started)
    db.dispose()
    return timings[0], timings[1]


def http_export(port: int) -> tuple[int, int, float]:
    """(data rows, bytes, seconds) of GET /v1/admin/reports/usage.csv, streamed and discarded."""
    started = time.perf_counter()
    lines = size = 0
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.stream(
        "GET", f"http://127.0.0.1:{port}/v1/admin/reports/usage.csv", headers=headers, timeout=600
    ) as response:
        if response.status_code != 200:
            raise RuntimeError(f"usage.csv answered {response.status_code}")
        for chunk in response.iter_raw(1 << 20):
            size += len(chunk)
            lines += chunk.count(b"\n")
    return lines - 1, size, time.perf_counter() - started


def run(engine_name: str, *, quick: bool) -> list[Figure]:
    count = 100_000 if quick else 1_000_000
    with fresh_database(engine_name, "b6") as url, tempfile.TemporaryDirectory(prefix="mfbench-b6-") as folder:
        load(url, count)
        bulk_export(url)  # warm the cache for both contenders
        _, base_s = bulk_export(url)
        report_s, python_s = in_process(url)
        with bench_server(_server_env(url), Path(folder) / "server.log") as server:
            idle_rss = server.peak_rss_kb()
            rows, size, http_s = http_export(server.port)
            peak_rss = server.peak_rss_kb()
    if rows != count:
        raise RuntimeError(f"B6: usage.csv had {rows} rows, expected {count}")
    rate, base_rate = rows / http_s, rows / base_s
    gated = not quick and engine_name == "postgresql"
    label = "COPY … TO STDOUT WITH CSV" if engine_name == "postgresql" else "sqlite3 cursor → csv.writer"
    notes = {"rows": rows, "bytes": size, "seconds": round(http_s, 2), "baseline_seconds": round(base_s, 2)}
    return [
        Figure(
            "B6",
            engine_name,
            "  usage.csv in-process, no HTTP (rows/s)",
            count / report_s,
            "rows/s",
            baseline=base_rate,
            baseline_label=label,
            notes={"python_writer_rows_per_s": round(count / python_s)},
        ),
        Figure(
            "B6",
            engine_name,
            "  the Python CSV writer in-process (rows/s)",
            count / python_s,
            "rows/s",
            baseline=count / report_s,
            baseline_label="the report's own path (SQL-formatted on PostgreSQL)",
        ),
        Figure(
            "B6",
            engine_name,
            f"usage.csv over HTTP, {rows:,} rows (rows/s)",
            rate,
            "rows/s",
            baseline=base_rate,
            baseline_label=label,
            target="≥ 400k rows/s (PostgreSQL formats in SQL, streams from COPY)",
            met=(rate >= 400_000) if gated else None,
            notes=notes,
        ),
        Figure(
            "B6",
            engine_name,
            "  server peak RSS (MB)",
            peak_rss / 1024,
            "MB",
            baseline=idle_rss / 1024,
            baseline_label="server peak RSS before the export",
            target="≤ 150 MB",
            met=(peak_rss / 1024 <= 150) if gated else None,
            notes=notes,
        ),
    ]
