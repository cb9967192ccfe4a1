"""A 200k-row usage.csv streams in flat memory (server-side cursor + chunked CSV writer)."""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from modelfaucet.adapters.db.tables import usage_events
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.reports import stream_report
from modelfaucet.services.seed import SeedResult

ROWS = 200_000
CHUNK = 10_000
# Generous: the rows alone would take well over 100 MB as Python objects, the CSV ~33 MB.
PEAK_BOUND_BYTES = 24 * 1024 * 1024


def _bulk_insert(ctx: ServiceContext, seeded: SeedResult) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with ctx.db.transaction() as conn:
        for offset in range(0, ROWS, CHUNK):
            conn.execute(
                usage_events.insert(),
                [
                    {
                        "id": f"00000000-0000-4000-8000-{i:012d}",
                        "request_id": f"bulk-{i:07d}",
                        "request_hash": "0" * 64,
                        "app_id": seeded.app_id,
                        "public_app_id": "app_pub_demo",
                        "end_user_id": seeded.end_user_id,
                        "feature_key": "customer_reply",
                        "route_mode": "platform",
                        "provider": "mock",
                        "model": "mock-small",
                        "input_tokens": 1200,
                        "output_tokens": 300,
                        "cached_tokens": 0,
                        "upstream_cost_units": 105_000,
                        "retail_price_units": 136_500,
                        "channel_revenue_units": 12_600,
                        "platform_revenue_units": 18_900,
                        "gateway_fee_units": 0,
                        "rating_snapshot": {},
                        "transaction_id": None,
                        "created_at": start + timedelta(seconds=i),
                    }
                    for i in range(offset, min(offset + CHUNK, ROWS))
                ],
            )


@pytest.mark.slow
def test_a_200k_row_usage_export_streams_in_flat_memory(ctx: ServiceContext, seeded: SeedResult) -> None:
    _bulk_insert(ctx, seeded)
    tracemalloc.start()
    try:
        started = time.perf_counter()
        rows = 0
        size = 0
        largest_chunk = 0
        for chunk in stream_report(ctx, "usage"):
            rows += chunk.count(b"\r\n")
            size += len(chunk)
            largest_chunk = max(largest_chunk, len(chunk))
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == ROWS + 1
    assert largest_chunk < 256 * 1024
    print(f"\n200k usage.csv: {size / 1e6:.1f} MB in {elapsed:.1f}s, traced peak {peak / 1e6:.1f} MB")
    assert peak < PEAK_BOUND_BYTES, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB report"
