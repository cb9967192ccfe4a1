"""The HTTP scenarios: a real ``uvicorn`` server subprocess on loopback and the load
generator of :mod:`bench.loadgen` in this process.

- B2: single-event ``POST /v1/usage/events`` at 32 keep-alive clients, beside the no-op
  route taking the same JSON body (same server, same middleware, same generator).
- B3: batches of 1000 events per request, beside the plain-SQL batched baseline of B1.
- B4: B2 at 1, 8 and 32 clients.
- B7: the Stripe webhook credit path (signed ``checkout.session.completed`` events, each
  crediting its own pending top-up), beside the no-op route at the same concurrency.
- B9: hold + capture pairs (SPEC §18), beside single events in the same run.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import stripe_topups, usage_events
from modelfaucet.adapters.stripe.signature import sign

from .b1_posting import run_copy
from .common import Figure, fresh_database, percentile
from .loadgen import LoadResult, bench_server, expect_statuses, request_bytes, run_load
from .usage_data import event_json, prepare

GATEWAY_TOKEN = "bench-gateway-token-not-a-secret"
ADMIN_TOKEN = "bench-admin-token-not-a-secret"
WEBHOOK_SECRET = "whsec_bench_not_a_secret"
USAGE_PATH = "/v1/usage/events"
NOOP_PATH = "/bench/noop"
_AUTH = {"authorization": f"Bearer {GATEWAY_TOKEN}", "content-type": "application/json"}


def _server_env(url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": url,
        "GATEWAY_SERVICE_TOKEN": GATEWAY_TOKEN,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }


def _single_requests(path: str, tag: str, count: int) -> list[bytes]:
    return [request_bytes("POST", path, json.dumps(event_json(tag, n)).encode(), _AUTH) for n in range(count)]


def _usage_rows(url: str, tag: str) -> int:
    db = Database.from_url(url)
    with db.read() as conn:
        stored = conn.execute(
            select(func.count()).select_from(usage_events).where(usage_events.c.request_id.like(f"{tag}-%"))
        ).scalar_one()
    db.dispose()
    return int(stored)


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def _single(port: int, tag: str, count: int, clients: int, path: str = USAGE_PATH) -> LoadResult:
    result = run_load(port, _single_requests(path, tag, count), clients)
    expect_statuses(result, lambda s: s == 201, f"{tag} on {path}")
    return result


# -- B2 and B4 -------------------------------------------------------------------------------


def run_b2(engine_name: str, *, quick: bool) -> list[Figure]:
    count = 2_000 if quick else 20_000
    clients = 32
    with fresh_database(engine_name, "b2") as url, tempfile.TemporaryDirectory(prefix="mfbench-b2-") as folder:
        prepare(url)
        with bench_server(_server_env(url), Path(folder) / "server.log") as server:
            _single(server.port, "warm-noop", 500, clients, NOOP_PATH)
            _single(server.port, "warm", 500, clients)
            noop = _single(server.port, "noop", count, clients, NOOP_PATH)
            usage = _single(server.port, "b2", count, clients)
        if _usage_rows(url, "b2") != count:
            raise RuntimeError("B2: not every acknowledged event was stored")
        two = shared = None
        if engine_name == "postgresql":
            # The design's answer to a CPU-bound API process: more stateless processes, each
            # its own SO_REUSEPORT socket (modelfaucet serve --workers 2); and, for comparison
            # in the same run, two processes accepting on one shared socket.
            env = {**_server_env(url), "MODELFAUCET_BENCH_WORKERS": "2"}
            with bench_server(env, Path(folder) / "server-2.log") as server:
                _single(server.port, "warm2", 500, clients)
                two = _single(server.port, "b2w2", count, clients)
            shared_env = {**env, "MODELFAUCET_BENCH_SHARED_SOCKET": "1"}
            with bench_server(shared_env, Path(folder) / "server-2s.log") as server:
                _single(server.port, "warm2s", 500, clients)
                shared = _single(server.port, "b2w2s", count, clients)
            for tag in ("b2w2", "b2w2s"):
                if _usage_rows(url, tag) != count:
                    raise RuntimeError(f"B2: not every acknowledged event was stored ({tag})")
    p99 = percentile(usage.latencies, 0.99)
    gated = not quick and engine_name == "postgresql"
    notes = {"events": count, "clients": clients, "p50_ms": round(_ms(percentile(usage.latencies, 0.5)), 2)}
    return [
        Figure(
            "B2",
            engine_name,
            "HTTP single event, 32 clients (ev/s)",
            usage.rate,
            "ev/s",
            baseline=noop.rate,
            baseline_label="no-op route, same body, same clients",
            target="≥ 2,000 ev/s and ≥ 0.5× no-op",
            met=(usage.rate >= 2_000 and usage.rate >= 0.5 * noop.rate) if gated else None,
            notes=notes,
        ),
        Figure(
            "B2",
            engine_name,
            "  p99 latency (ms)",
            _ms(p99),
            "ms",
            baseline=_ms(percentile(noop.latencies, 0.99)),
            baseline_label="no-op route p99",
            target="≤ 50 ms",
            met=(_ms(p99) <= 50) if gated else None,
            notes=notes,
        ),
        *(
            []
            if two is None or shared is None
            else [
                Figure(
                    "B2",
                    engine_name,
                    "  2 API processes (serve --workers 2), 32 clients (ev/s)",
                    two.rate,
                    "ev/s",
                    baseline=usage.rate,
                    baseline_label="1 process, same run",
                    target="≥ 2,500 ev/s",
                    met=(two.rate >= 2_500) if gated else None,
                    notes={"p50_ms": round(_ms(percentile(two.latencies, 0.5)), 2)},
                ),
                Figure(
                    "B2",
                    engine_name,
                    "  2 API processes: p99 latency (ms)",
                    _ms(percentile(two.latencies, 0.99)),
                    "ms",
                    baseline=_ms(p99),
                    baseline_label="1 process p99",
                    target="≤ 50 ms",
                    met=(_ms(percentile(two.latencies, 0.99)) <= 50) if gated else None,
                ),
                Figure(
                    "B2",
                    engine_name,
                    "  2 API processes on one shared socket (ev/s)",
                    shared.rate,
                    "ev/s",
                    baseline=two.rate,
                    baseline_label="2 processes, a SO_REUSEPORT socket each",
                    notes={"p99_ms": round(_ms(percentile(shared.latencies, 0.99)), 2)},
                ),
            ]
        ),
    ]


def run_b4(engine_name: str, *, quick: bool) -> list[Figure]:
    plan = [(1, 300), (8, 1_000), (32, 2_000)] if quick else [(1, 2_000), (8, 6_000), (32, 12_000)]
    rates: dict[int, LoadResult] = {}
    with fresh_database(engine_name, "b4") as url, tempfile.TemporaryDirectory(prefix="mfbench-b4-") as folder:
        prepare(url)
        with bench_server(_server_env(url), Path(folder) / "server.log") as server:
            _single(server.port, "warm", 500, 32)
            for clients, count in plan:
                rates[clients] = _single(server.port, f"b4c{clients}", count, clients)
    one = rates[1].rate
    figures = []
    for clients, _ in plan:
        result = rates[clients]
        last = clients == plan[-1][0]
        figures.append(
            Figure(
                "B4",
                engine_name,
                f"HTTP single event, {clients} client{'s' if clients > 1 else ''} (ev/s)",
                result.rate,
                "ev/s",
                baseline=one if clients > 1 else None,
                baseline_label="1 client" if clients > 1 else "",
                target="32 clients ≥ 3× 1 client" if last else "",
                met=(result.rate >= 3 * one) if last and not quick and engine_name == "postgresql" else None,
                notes={
                    "events": result.requests,
                    "p50_ms": round(_ms(percentile(result.latencies, 0.5)), 2),
                    "p99_ms": round(_ms(percentile(result.latencies, 0.99)), 2),
                },
            )
        )
    return figures


# -- B3 -----------------------------------------------------------------------------------------


def run_b3(engine_name: str, *, quick: bool) -> list[Figure]:
    per_request = 1000
    requests_count = 10 if quick else 100
    clients = 2
    baseline_events = 5_000 if quick else 20_000
    with fresh_database(engine_name, "b3") as url, tempfile.TemporaryDirectory(prefix="mfbench-b3-") as folder:
        world = prepare(url)
        bodies = []
        for r in range(requests_count + 2):
            tag = "warm" if r < 2 else "b3"
            events = [event_json(tag, r * per_request + i) for i in range(per_request)]
            bodies.append(request_bytes("POST", USAGE_PATH, json.dumps({"events": events}).encode(), _AUTH))
        with bench_server(_server_env(url), Path(folder) / "server.log") as server:
            run_load(server.port, bodies[:2], 2)
            result = run_load(server.port, bodies[2:], clients)
        expect_statuses(result, lambda s: s == 200, "B3 batches")
        events_total = requests_count * per_request
        if _usage_rows(url, "b3") != events_total:
            raise RuntimeError("B3: not every event of the batches was stored")
        # The lower bound of issue 16: binary COPY + one guarded wallet UPDATE per batch of
        # 1,000 events, hot rows last, on two connections (B1's bound (b)).
        plain_rate = run_copy(world, tag="copy-b3", count=baseline_events, batch=1_000, connections=2)
    rate = events_total / result.seconds
    return [
        Figure(
            "B3",
            engine_name,
            "HTTP batches of 1000 events (ev/s)",
            rate,
            "ev/s",
            baseline=plain_rate,
            baseline_label="lower bound: binary COPY + guarded UPDATE, 2 connections",
            target="≥ 15,000 ev/s",
            met=(rate >= 15_000) if not quick and engine_name == "postgresql" else None,
            notes={
                "events": events_total,
                "clients": clients,
                "p99_request_ms": round(_ms(percentile(result.latencies, 0.99)), 1),
            },
        )
    ]


# -- B7 -----------------------------------------------------------------------------------------


def _pending_topups(url: str, count: int) -> list[str]:
    """``count`` pending top-ups of 5.00 USD for the demo end user; their session ids."""
    from modelfaucet.config import Settings
    from modelfaucet.services.context import ServiceContext
    from modelfaucet.services.seed import seed_demo_data

    db = Database.from_url(url)
    seeded = seed_demo_data(ServiceContext(db=db, settings=Settings(database_url=url)))
    now = datetime.now(UTC)
    sessions = [f"cs_test_bench_{uuid.uuid4().hex}" for _ in range(count)]
    with db.transaction() as conn:
        conn.execute(
            insert(stripe_topups),
            [
                {
                    "id": str(uuid.uuid4()),
                    "checkout_session_id": session,
                    "account_id": seeded.end_user_wallet_id,
                    "end_user_id": seeded.end_user_id,
                    "amount_units": 500_000_000,
                    "amount_cents": 500,
                    "currency": "usd",
                    "status": "pending",
                    "created_at": now,
                    "updated_at": now,
                }
                for session in sessions
            ],
        )
    db.dispose()
    return sessions


def _webhook_request(session: str, n: int) -> bytes:
    payload = json.dumps(
        {
            "id": f"evt_bench_{n}_{session[-8:]}",
            "object": "event",
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    "id": session,
                    "object": "checkout.session",
                    "amount_total": 500,
                    "currency": "usd",
                    "payment_status": "paid",
                    "mode": "payment",
                }
            },
        },
        separators=(",", ":"),
    ).encode()
    headers = {"content-type": "application/json", "stripe-signature": sign(payload, WEBHOOK_SECRET, int(time.time()))}
    return request_bytes("POST", "/v1/stripe/webhook", payload, headers)


def run_b7(engine_name: str, *, quick: bool) -> list[Figure]:
    count = 300 if quick else 2_000
    sequential = 100 if quick else 500  # the same path one delivery at a time
    clients = 8
    warm = 100
    with fresh_database(engine_name, "b7") as url, tempfile.TemporaryDirectory(prefix="mfbench-b7-") as folder:
        prepare(url)
        sessions = _pending_topups(url, count + warm + sequential)
        requests = [_webhook_request(session, n) for n, session in enumerate(sessions)]
        with bench_server(_server_env(url), Path(folder) / "server.log") as server:
            _single(server.port, "warm-noop", 500, clients, NOOP_PATH)
            run_load(server.port, requests[:warm], clients)
            noop = _single(server.port, "noop", count, clients, NOOP_PATH)
            result = run_load(server.port, requests[warm : warm + count], clients)
            noop_one = _single(server.port, "noop-1", sequential, 1, NOOP_PATH)
            one = run_load(server.port, requests[warm + count :], 1)
        expect_statuses(result, lambda s: s == 200, "B7 webhooks")
        expect_statuses(one, lambda s: s == 200, "B7 webhooks, one client")
        count += sequential
        db = Database.from_url(url)
        with db.read() as conn:
            credited = conn.execute(
                select(func.count()).select_from(stripe_topups).where(stripe_topups.c.status == "credited")
            ).scalar_one()
        db.dispose()
        if credited != count + warm:
            raise RuntimeError(f"B7: {credited} of {count + warm} top-ups credited")
    p99 = _ms(percentile(result.latencies, 0.99))
    return [
        Figure(
            "B7",
            engine_name,
            "webhook credit, 8 clients, p99 (ms)",
            p99,
            "ms",
            baseline=_ms(percentile(noop.latencies, 0.99)),
            baseline_label="no-op route p99, same clients",
            target="≤ 20 ms",  # issue 16
            met=(p99 <= 20) if not quick and engine_name == "postgresql" else None,
            notes={
                "events": result.requests,
                "clients": clients,
                "rate_per_s": round(result.rate, 1),
                "noop_rate_per_s": round(noop.rate, 1),
                "p50_ms": round(_ms(percentile(result.latencies, 0.5)), 2),
            },
        ),
        Figure(
            "B7",
            engine_name,
            "  same, 1 client, p99 (ms)",
            _ms(percentile(one.latencies, 0.99)),
            "ms",
            baseline=_ms(percentile(noop_one.latencies, 0.99)),
            baseline_label="no-op route p99, 1 client",
            notes={"events": sequential, "rate_per_s": round(one.rate, 1)},
        ),
    ]


# -- B9: holds -----------------------------------------------------------------------------

HOLDS_PATH = "/v1/usage/holds"


def _hold_requests(tag: str, count: int) -> list[bytes]:
    def hold_json(n: int) -> dict[str, object]:
        event = event_json(tag, n)
        return {
            "request_id": event["request_id"],
            "public_app_id": event["public_app_id"],
            "external_user_id": event["external_user_id"],
            "feature_key": event["feature_key"],
            "amount_usd": "0.01000000",
        }

    return [request_bytes("POST", HOLDS_PATH, json.dumps(hold_json(n)).encode(), _AUTH) for n in range(count)]


def _captured(url: str, tag: str) -> int:
    from modelfaucet.adapters.db.tables import holds

    db = Database.from_url(url)
    with db.read() as conn:
        found = conn.execute(
            select(func.count())
            .select_from(holds)
            .where(holds.c.request_id.like(f"{tag}-%"), holds.c.status == "captured")
        ).scalar_one()
    db.dispose()
    return int(found)


def run_b9(engine_name: str, *, quick: bool) -> list[Figure]:
    """Hold + capture pairs over HTTP at 32 clients, beside B2's single events in the same
    run: every hold of the run is placed, then every capture (the usage event with the
    hold's request id) is sent; a pair costs the two phases' time over the pair count."""
    count = 1_000 if quick else 10_000
    clients = 32
    with fresh_database(engine_name, "b9") as url, tempfile.TemporaryDirectory(prefix="mfbench-b9-") as folder:
        prepare(url)
        with bench_server(_server_env(url), Path(folder) / "server.log") as server:
            _single(server.port, "warm", 500, clients)
            events = _single(server.port, "b9ev", count, clients)
            holds = run_load(server.port, _hold_requests("b9", count), clients)
            expect_statuses(holds, lambda s: s == 201, "b9 holds")
            captures = _single(server.port, "b9", count, clients)
        if _captured(url, "b9") != count:
            raise RuntimeError("B9: not every hold was captured by its event")
    pair_rate = count / (holds.seconds + captures.seconds)
    ratio = events.rate / pair_rate
    gated = not quick and engine_name == "postgresql"
    return [
        Figure(
            "B9",
            engine_name,
            "HTTP hold + capture pairs, 32 clients (pairs/s)",
            pair_rate,
            "pairs/s",
            baseline=events.rate,
            baseline_label="B2 single events, same run",
            target="a pair costs ≤ 2.2× one event",
            met=(ratio <= 2.2) if gated else None,
            notes={"pairs": count, "clients": clients, "pair_cost_in_events": round(ratio, 2)},
        )
    ]
