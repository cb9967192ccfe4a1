"""LOG_FORMAT=json: one JSON line per request with its id, route template, status and
duration, and never a token, a key or anything the caller sent in the path or query."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from modelfaucet.config import Settings
from tests.conftest import ADMIN_TOKEN, GATEWAY_TOKEN, start_live_server

SECRET_IN_QUERY = "sk_test_0123456789abcdef-in-a-query"
SECRET_IN_PATH = "mf_app_sk_in_a_path_0123456789"


def test_each_request_is_one_json_line_with_id_route_status_duration_and_no_secret(
    settings: Settings, tmp_path: Path
) -> None:
    server = start_live_server(settings, tmp_path, extra_env={"LOG_FORMAT": "json"})
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    gateway_wrong = {"Authorization": f"Bearer {GATEWAY_TOKEN}x"}
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            answered = {
                request_id: client.request(method, path, headers={**headers, "x-request-id": request_id}, **kw)
                for request_id, method, path, headers, kw in [
                    ("req-log-1", "GET", "/v1/admin/wallets", admin, {"params": {"owner_id": SECRET_IN_QUERY}}),
                    ("req-log-2", "GET", f"/v1/admin/wallets/{SECRET_IN_PATH}", admin, {}),
                    ("req-log-3", "POST", "/v1/usage/events", gateway_wrong, {"json": {}}),
                    ("req-log-4", "GET", "/no/such/route", {}, {}),
                ]
            }
    finally:
        server.stop()
    log = server.log_path.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert len(lines) == len([line for line in log.splitlines() if line.strip()]) - 1  # all JSON but "listening on"
    by_id = {}
    for line in lines:
        if line.get("logger") == "modelfaucet.access" and line.get("request_id") in answered:
            assert line["request_id"] not in by_id, "one line per request"
            by_id[line["request_id"]] = line
    assert {request_id: line["status"] for request_id, line in by_id.items()} == {
        request_id: response.status_code for request_id, response in answered.items()
    }
    assert by_id["req-log-1"]["route"] == "/v1/admin/wallets"
    assert by_id["req-log-2"]["route"] == "/v1/admin/wallets/{wallet_id}"
    assert by_id["req-log-3"]["route"] == "/v1/usage/events"
    assert by_id["req-log-4"]["route"] == "unmatched"
    for line in by_id.values():
        assert line["method"] in ("GET", "POST") and isinstance(line["duration_ms"], int | float)
    for secret in (ADMIN_TOKEN, GATEWAY_TOKEN, SECRET_IN_QUERY, SECRET_IN_PATH):
        assert secret not in log
