"""The shared idempotency mechanism, exercised through adjustments (SQLite and PostgreSQL).

Same key + same body replays the stored status and body byte for byte and applies
nothing; same key + different body is a 409 naming the fields; a request while the first
is in flight is a 409 too; a failed request leaves the key free; keys live >= 24 h.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from modelfaucet.adapters.db import ledger
from modelfaucet.adapters.db.tables import adjustments, idempotency_keys, ledger_transactions
from modelfaucet.domain.outcomes import IdempotencyConflict, InsufficientBalance
from modelfaucet.services import idempotency
from modelfaucet.services.apply_adjustment import (
    AdjustmentApplied,
    AdjustmentKind,
    AdjustWallet,
    Direction,
    apply_adjustment,
)
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.idempotency import IdempotentRequest
from modelfaucet.services.reconcile import reconcile_ledger
from modelfaucet.services.seed import SeedResult

REFUND = {
    "kind": "refund",
    "direction": "credit",
    "amount_usd": "2.50000000",
    "reason": "test-mode refund",
    "idempotency_key": "refund-demo-001",
}
OPERATOR = Actor("admin")


def url(wallet_id: str) -> str:
    return f"/v1/admin/wallets/{wallet_id}/adjustments"


def applied_count(ctx: ServiceContext) -> int:
    with ctx.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(adjustments)).scalar_one())


def balance(ctx: ServiceContext, wallet_id: str) -> int:
    with ctx.db.read() as conn:
        return int(ledger.get_account(conn, wallet_id).balance_units)


def test_the_same_key_and_body_replays_status_and_body_byte_for_byte_and_applies_nothing(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    first = client.post(url(seeded.end_user_wallet_id), json=REFUND, headers=admin_headers)
    second = client.post(url(seeded.end_user_wallet_id), json=REFUND, headers=admin_headers)

    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert first.json()["idempotency_key"] == "refund-demo-001"
    assert applied_count(ctx) == 1
    assert balance(ctx, seeded.end_user_wallet_id) == 1_250_000_000
    assert reconcile_ledger(ctx).ok


def test_a_replay_still_answers_the_original_balance_after_later_changes(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    first = client.post(url(seeded.end_user_wallet_id), json=REFUND, headers=admin_headers)
    other = {**REFUND, "idempotency_key": "refund-demo-002"}
    client.post(url(seeded.end_user_wallet_id), json=other, headers=admin_headers)
    replay = client.post(url(seeded.end_user_wallet_id), json=REFUND, headers=admin_headers)
    assert replay.content == first.content
    assert replay.json()["wallet_balance_usd"] == "12.50000000"


def test_an_equal_amount_written_differently_is_the_same_request(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    first = client.post(url(seeded.end_user_wallet_id), json=REFUND, headers=admin_headers)
    replay = client.post(url(seeded.end_user_wallet_id), json={**REFUND, "amount_usd": "2.5"}, headers=admin_headers)
    assert replay.status_code == 201
    assert replay.content == first.content
    assert applied_count(ctx) == 1


def test_the_key_may_come_in_the_idempotency_key_header(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    body = {k: v for k, v in REFUND.items() if k != "idempotency_key"}
    headers = {**admin_headers, "Idempotency-Key": "header-key-0001"}
    first = client.post(url(seeded.end_user_wallet_id), json=body, headers=headers)
    # The same key in the body instead is the same request.
    second = client.post(
        url(seeded.end_user_wallet_id), json={**body, "idempotency_key": "header-key-0001"}, headers=admin_headers
    )
    assert first.status_code == 201
    assert first.json()["idempotency_key"] == "header-key-0001"
    assert second.content == first.content
    assert applied_count(ctx) == 1


def test_a_body_key_and_a_different_header_key_are_refused(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    response = client.post(
        url(seeded.end_user_wallet_id), json=REFUND, headers={**admin_headers, "Idempotency-Key": "another-key-1"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "idempotency_key"
    assert applied_count(ctx) == 0
    same = client.post(
        url(seeded.end_user_wallet_id), json=REFUND, headers={**admin_headers, "Idempotency-Key": "refund-demo-001"}
    )
    assert same.status_code == 201


@pytest.mark.parametrize(
    ("change", "differing"),
    [
        ({"amount_usd": "2.60000000"}, ["amount_usd"]),
        ({"reason": "another reason"}, ["reason"]),
        ({"direction": "debit"}, ["direction"]),
        ({"kind": "chargeback", "amount_usd": "1"}, ["amount_usd", "kind"]),
    ],
)
def test_the_same_key_with_a_different_body_is_a_409_naming_what_differs(
    *,
    client: TestClient,
    admin_headers: dict[str, str],
    ctx: ServiceContext,
    seeded: SeedResult,
    change: dict[str, str],
    differing: list[str],
) -> None:
    client.post(url(seeded.end_user_wallet_id), json=REFUND, headers=admin_headers)
    response = client.post(url(seeded.end_user_wallet_id), json={**REFUND, **change}, headers=admin_headers)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "idempotency_conflict"
    assert error["details"]["differing_fields"] == differing
    for name in differing:
        assert name in error["message"]
    assert applied_count(ctx) == 1


def test_keys_are_scoped_per_wallet(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    first = client.post(url(seeded.end_user_wallet_id), json=REFUND, headers=admin_headers)
    other = client.post(url(seeded.developer_wallet_id), json=REFUND, headers=admin_headers)
    assert first.status_code == other.status_code == 201
    assert other.json()["wallet_id"] == seeded.developer_wallet_id
    assert applied_count(ctx) == 2


def test_a_request_while_the_first_is_in_flight_is_a_409_and_applies_nothing(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    command = AdjustWallet(
        wallet_id=seeded.end_user_wallet_id,
        kind=AdjustmentKind.REFUND,
        direction=Direction.CREDIT,
        amount_units=250_000_000,
        reason="test-mode refund",
        idempotency_key="refund-demo-001",
    )
    request = command.idempotent_request()
    assert request is not None
    held = idempotency.claim(ctx, request)  # the first request, still running
    assert isinstance(held, idempotency.Claim)

    response = client.post(url(seeded.end_user_wallet_id), json=REFUND, headers=admin_headers)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert "in progress" in response.json()["error"]["message"]
    assert response.json()["error"]["details"]["in_progress"] is True
    assert applied_count(ctx) == 0
    # The first one finishes; now the same request answers with its stored result.
    first = AdjustmentApplied(
        "first-id", seeded.end_user_wallet_id, AdjustmentKind.REFUND, Direction.CREDIT, 1, "applied", "r", None, 7
    )
    assert _complete(ctx, held, first.to_record())
    replay = client.post(url(seeded.end_user_wallet_id), json=REFUND, headers=admin_headers)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.to_record()


def _complete(ctx: ServiceContext, held: idempotency.Claim, record: dict[str, Any]) -> bool:
    with ctx.unit_of_work() as uow:
        stored = uow.idempotency.complete(
            scope=held.request.scope,
            key=held.request.key,
            claimed_at=held.claimed_at,
            result=record,
            expires_at=uow.now + idempotency.RETENTION,
        )
        uow.commit()
    return stored


def test_a_failed_request_stores_nothing_and_frees_the_key_for_a_retry(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    debit = {**REFUND, "kind": "chargeback", "direction": "debit", "amount_usd": "12"}
    refused = client.post(url(seeded.end_user_wallet_id), json=debit, headers=admin_headers)
    assert refused.status_code == 402
    with ctx.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(idempotency_keys)).scalar_one() == 0
    client.post(
        url(seeded.end_user_wallet_id),
        json={"direction": "credit", "amount_usd": "5", "reason": "top up"},
        headers=admin_headers,
    )
    retried = client.post(url(seeded.end_user_wallet_id), json=debit, headers=admin_headers)
    assert retried.status_code == 201
    assert retried.json()["wallet_balance_usd"] == "3.00000000"
    assert reconcile_ledger(ctx).ok


def test_a_key_is_kept_at_least_24_hours(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    client.post(url(seeded.end_user_wallet_id), json=REFUND, headers=admin_headers)
    with ctx.db.read() as conn:
        row = conn.execute(select(idempotency_keys)).one()
    assert row.state == "done"
    assert row.response_body is not None
    assert row.expires_at - row.created_at >= timedelta(hours=24)


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _command(seeded: SeedResult, **changes: object) -> AdjustWallet:
    values: dict[str, object] = {
        "wallet_id": seeded.end_user_wallet_id,
        "kind": AdjustmentKind.REFUND,
        "direction": Direction.CREDIT,
        "amount_units": 100_000_000,
        "reason": "clocked",
        "idempotency_key": "clocked-key-01",
    }
    values.update(changes)
    return AdjustWallet(**values)  # type: ignore[arg-type]


def test_an_expired_key_may_be_used_again_but_not_within_24_hours(ctx: ServiceContext, seeded: SeedResult) -> None:
    clock = FakeClock()
    timed = ServiceContext(db=ctx.db, settings=ctx.settings, clock=clock)
    apply_adjustment(timed, _command(seeded), actor=OPERATOR)
    clock.now += timedelta(hours=23, minutes=59)
    with pytest.raises(IdempotencyConflict):
        apply_adjustment(timed, _command(seeded, amount_units=7), actor=OPERATOR)
    clock.now += timedelta(minutes=2)
    result = apply_adjustment(timed, _command(seeded, amount_units=7), actor=OPERATOR)
    assert result.replayed is False
    assert applied_count(ctx) == 2


def test_an_abandoned_in_flight_claim_is_taken_over_after_it_goes_stale(
    ctx: ServiceContext, seeded: SeedResult
) -> None:
    clock = FakeClock()
    timed = ServiceContext(db=ctx.db, settings=ctx.settings, clock=clock)
    request = _command(seeded).idempotent_request()
    assert request is not None
    abandoned = idempotency.claim(timed, request)  # its process "died" here
    with pytest.raises(IdempotencyConflict):
        apply_adjustment(timed, _command(seeded), actor=OPERATOR)
    clock.now += idempotency.STALE_CLAIM + timedelta(seconds=1)
    result = apply_adjustment(timed, _command(seeded), actor=OPERATOR)
    assert result.replayed is False
    # The abandoned request, should it wake up, can no longer store a result.
    assert isinstance(abandoned, idempotency.Claim)
    assert _complete(timed, abandoned, {"late": True}) is False
    assert applied_count(ctx) == 1


def test_run_idempotent_releases_the_claim_when_the_operation_raises(ctx: ServiceContext, seeded: SeedResult) -> None:
    request = IdempotentRequest(scope="test:scope", key="raising-key-01", summary={"a": 1})

    def failing(_uow: object) -> Counted:
        raise InsufficientBalance("no")

    with pytest.raises(InsufficientBalance):
        idempotency.run_idempotent(ctx, request, failing, Counted.from_record)
    result = idempotency.run_idempotent(ctx, request, lambda _uow: Counted(1), Counted.from_record)
    assert (result.result, result.replayed) == (Counted(1), False)
    replay = idempotency.run_idempotent(ctx, request, lambda _uow: Counted(500), Counted.from_record)
    assert (replay.result, replay.replayed) == (Counted(1), True)


@dataclass(frozen=True)
class Counted:
    ok: int

    def to_record(self) -> dict[str, Any]:
        return {"ok": self.ok}

    @classmethod
    def from_record(cls, record: Any) -> Counted:
        return cls(record["ok"])


def test_the_stored_summary_keeps_digests_not_values(ctx: ServiceContext, seeded: SeedResult) -> None:
    apply_adjustment(ctx, _command(seeded, reason="customer card 4242"), actor=OPERATOR)
    with ctx.db.read() as conn:
        row = conn.execute(select(idempotency_keys)).one()
    assert set(row.request_summary) == {"amount_usd", "direction", "kind", "reason"}
    assert "4242" not in str(row.request_summary)


def test_concurrent_requests_with_the_same_key_apply_once(
    client: TestClient, admin_headers: dict[str, str], ctx: ServiceContext, seeded: SeedResult
) -> None:
    workers = 12
    barrier = threading.Barrier(workers)

    def send(_: int) -> tuple[int, bytes, str]:
        barrier.wait()
        response = client.post(url(seeded.end_user_wallet_id), json=REFUND, headers=admin_headers)
        code = response.json().get("error", {}).get("code", "") if response.status_code != 201 else ""
        return response.status_code, response.content, code

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(send, range(workers)))

    created = [content for status, content, _ in results if status == 201]
    conflicts = [code for status, _, code in results if status == 409]
    assert len(created) + len(conflicts) == workers, results
    assert created, results
    assert len(set(created)) == 1  # every success is the one stored result
    assert set(conflicts) <= {"idempotency_conflict"}
    assert applied_count(ctx) == 1
    assert balance(ctx, seeded.end_user_wallet_id) == 1_250_000_000
    with ctx.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(ledger_transactions)).scalar_one() == 2
    assert reconcile_ledger(ctx).ok


def test_concurrent_service_calls_with_the_same_key_apply_once(ctx: ServiceContext, seeded: SeedResult) -> None:
    workers = 10
    barrier = threading.Barrier(workers)

    def call(_: int) -> str:
        barrier.wait()
        try:
            result = apply_adjustment(ctx, _command(seeded), actor=OPERATOR)
        except IdempotencyConflict:
            return "in_progress"
        return "replayed" if result.replayed else "applied"

    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(call, range(workers)))
    assert outcomes.count("applied") == 1, outcomes
    assert applied_count(ctx) == 1
    assert balance(ctx, seeded.end_user_wallet_id) == 1_100_000_000
