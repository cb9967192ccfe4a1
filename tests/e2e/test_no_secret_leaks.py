"""Secrets never leave the server.

The harness plants every kind of secret the service holds — platform, developer and BYOK
provider keys (and their ciphertexts), the Stripe webhook secret, the admin and gateway
tokens, MODELFAUCET_SECRET_KEY — then:

- drives **every operation in the OpenAPI document** (so routes added later are covered
  without touching this file) with every kind of caller (none, admin, gateway, end user,
  and a wrong bearer token that *is* a secret), with empty, schema-shaped and hostile
  bodies;
- runs **every CLI command** (discovered from the Typer app; ``serve`` runs as a real
  subprocess whose log is scanned);
- scans every response body and header, every CSV, the OpenAPI document, the audit log
  rows and the captured logs: zero occurrences of any secret, whole or in part.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from modelfaucet.adapters import netpolicy
from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import audit_log, provider_keys
from modelfaucet.adapters.secretbox import generate_key
from modelfaucet.cli.main import app as cli_app
from modelfaucet.config import Settings
from modelfaucet.http.app import create_app
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.seed import SeedResult, seed_demo_data
from tests.conftest import free_port, start_live_server, with_settings

PLATFORM_KEY = "sk-FAKEplatformLEAKCANARY0123456789abcd"
DEVELOPER_KEY = "sk-FAKEdeveloperLEAKCANARY0123456789efgh"
BYOK_KEY = "sk-ant-FAKE-byokLEAKCANARY-0123456789abcdefghijklmn"
WEBHOOK_SECRET = "whsec_test_LEAKCANARY_0123456789abcdefghij"
ADMIN_TOKEN = "admin-LEAKCANARY-0123456789abcdefghijklmnop"
GATEWAY_TOKEN = "gateway-LEAKCANARY-0123456789abcdefghijklmn"
SECRET_KEY = generate_key()
HOSTILE_KEY = "sk-FAKEhostileLEAKCANARY 0123456789ijkl"  # refused (whitespace): must not be echoed


def fragments(secret: str) -> list[str]:
    """The secret and its inner part (the masked form may show a prefix and the last 4)."""
    inner = secret[3:-4]
    return [secret, inner] if len(inner) >= 12 else [secret]


class Scanner:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.scanned = 0

    def plant(self, name: str, secret: str) -> None:
        for i, fragment in enumerate(fragments(secret)):
            self.secrets[f"{name}[{i}]"] = fragment

    def check(self, where: str, text: str) -> None:
        self.scanned += 1
        leaked = [name for name, fragment in self.secrets.items() if fragment in text]
        assert not leaked, f"{leaked} leaked in {where}"


@pytest.fixture(autouse=True)
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    def resolve(host: str, port: int = 443) -> list[Any]:
        import ipaddress

        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            return [ipaddress.ip_address("93.184.216.34")]

    monkeypatch.setattr(netpolicy, "resolve", resolve)


@pytest.fixture
def planted_settings(settings: Settings) -> Settings:
    return with_settings(
        settings,
        admin_token=ADMIN_TOKEN,
        gateway_service_token=GATEWAY_TOKEN,
        stripe_webhook_secret=WEBHOOK_SECRET,
        secret_key=SECRET_KEY,
    )


@pytest.fixture
def api(database: Database, planted_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(planted_settings, db=database), raise_server_exceptions=False) as client:
        yield client


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GATEWAY = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}


def plant_provider_keys(api: TestClient, seeded: SeedResult) -> dict[str, str]:
    platform = api.post(
        "/v1/admin/provider-keys",
        headers=ADMIN,
        json={
            "owner_scope": "platform",
            "provider": "openai",
            "api_key": PLATFORM_KEY,
            "base_url": "https://api.openai.com/v1",
        },
    )
    developer = api.post(
        "/v1/admin/provider-keys",
        headers=ADMIN,
        json={
            "owner_scope": "developer",
            "owner_id": seeded.developer_id,
            "provider": "openai",
            "api_key": DEVELOPER_KEY,
        },
    )
    # An app secret key an operator issued: its one showing is this response, never again.
    app_key = api.post(
        f"/v1/admin/apps/{seeded.public_app_id}/secret-keys", headers=ADMIN, json={"name": "leak harness"}
    )
    assert app_key.status_code == 201, app_key.text
    session = api.post(
        "/v1/sessions",
        headers={"Authorization": f"Bearer {app_key.json()['secret_key']}"},
        json={"public_app_id": seeded.public_app_id, "external_user_id": seeded.external_user_id},
    )
    assert session.status_code == 201, session.text
    user = {"Authorization": f"Bearer {session.json()['session_token']}"}
    byok = api.post("/v1/user/provider-keys", headers=user, json={"provider": "anthropic", "api_key": BYOK_KEY})
    for response in (platform, developer, byok):
        assert response.status_code == 201, response.text
    return {
        "app_secret_key": app_key.json()["secret_key"],
        "app_secret_key_id": app_key.json()["id"],
        "user_token": session.json()["session_token"],
        "byok_id": byok.json()["id"],
        "platform_key_id": platform.json()["id"],
    }


def example_for(schema: dict[str, Any], components: dict[str, Any], name: str = "", depth: int = 0) -> Any:
    if "$ref" in schema:
        return example_for(components.get(schema["$ref"].rsplit("/", 1)[1], {}), components, name, depth)
    for combiner in ("anyOf", "oneOf", "allOf"):
        if combiner in schema:
            options = [s for s in schema[combiner] if s.get("type") != "null"] or schema[combiner]
            return example_for(options[0], components, name, depth)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        return {
            prop: example_for(sub, components, prop, depth + 1) for prop, sub in schema.get("properties", {}).items()
        }
    if kind == "array":
        return [example_for(schema.get("items", {}), components, name, depth + 1)]
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 1
    if kind == "boolean":
        return True
    if name == "api_key":
        return HOSTILE_KEY
    if ("pattern" in schema and "[0-9]{8}" in schema["pattern"]) or name.endswith("_usd"):
        return "1.00000000"
    if name.endswith("url"):
        return "https://app.example/ok"
    if name.endswith("_id") or name == "id":
        return str(uuid.uuid4())
    return "leak-harness-value"


def operations(openapi: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "delete", "patch"}:
                yield method.upper(), path, operation


def fill_path(path: str, ids: dict[str, str]) -> list[str]:
    names = re.findall(r"{([^}]+)}", path)
    if not names:
        return [path]
    variants = []
    for choice in ("real", "random", "hostile"):
        filled = path
        for name in names:
            value = {"real": ids.get(name, str(uuid.uuid4())), "random": str(uuid.uuid4()), "hostile": "not-an-id"}[
                choice
            ]
            filled = filled.replace("{" + name + "}", value)
        variants.append(filled)
    return variants


def test_no_endpoint_response_header_csv_audit_row_or_log_contains_a_secret(
    api: TestClient, seeded: SeedResult, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    planted = plant_provider_keys(api, seeded)
    scanner = Scanner()
    for name, secret in {
        "platform_key": PLATFORM_KEY,
        "developer_key": DEVELOPER_KEY,
        "byok_key": BYOK_KEY,
        "webhook_secret": WEBHOOK_SECRET,
        "admin_token": ADMIN_TOKEN,
        "gateway_token": GATEWAY_TOKEN,
        "secret_key": SECRET_KEY,
        "hostile_key": HOSTILE_KEY,
        "app_secret_key": planted["app_secret_key"],
    }.items():
        scanner.plant(name, secret)
    with database.read() as conn:
        for row in conn.execute(select(provider_keys.c.id, provider_keys.c.ciphertext)):
            scanner.plant(f"ciphertext:{row.id}", str(row.ciphertext))

    openapi_response = api.get("/openapi.json")
    scanner.check("openapi.json", openapi_response.text)
    openapi = openapi_response.json()
    components = openapi.get("components", {}).get("schemas", {})
    ids = {
        "wallet_id": seeded.end_user_wallet_id,
        "public_app_id": seeded.public_app_id,
        "feature_key": seeded.feature_key,
        "key_id": planted["platform_key_id"],
        "provider": "mock",
        "model": "mock-small",
        "developer_id": seeded.developer_id,
        "name": "usage",
    }
    callers = {
        "anonymous": {},
        "admin": ADMIN,
        "gateway": GATEWAY,
        "user": {"Authorization": f"Bearer {planted['user_token']}"},
        "secret-as-token": {"Authorization": f"Bearer {WEBHOOK_SECRET}"},
        "secret-key-as-token": {"Authorization": f"Bearer {SECRET_KEY}"},
        "app-secret-key": {"Authorization": f"Bearer {planted['app_secret_key']}"},
    }
    driven: set[str] = set()
    csv_seen = 0
    for method, path, operation in operations(openapi):
        schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        bodies: list[Any] = [None]
        if schema is not None:
            bodies = [{}, example_for(schema, components), {"api_key": BYOK_KEY, "extra": ADMIN_TOKEN}, "not json"]
        for url in fill_path(path, ids):
            for caller, headers in callers.items():
                for body in bodies:
                    kwargs: dict[str, Any] = {"headers": {**headers, "Idempotency-Key": f"leak-{uuid.uuid4()}"}}
                    if body == "not json":
                        kwargs["content"] = b'{"api_key": "' + HOSTILE_KEY.encode() + b'"'
                        kwargs["headers"]["content-type"] = "application/json"
                    elif body is not None:
                        kwargs["json"] = body
                    response = api.request(method, url, **kwargs)
                    where = f"{method} {url} as {caller} ({response.status_code})"
                    assert response.status_code < 500, f"{where}: {response.text[:300]}"
                    scanner.check(where + " body", response.text)
                    scanner.check(where + " headers", json.dumps(dict(response.headers)))
                    if response.headers.get("content-type", "").startswith("text/csv"):
                        csv_seen += 1
                    driven.add(f"{method} {path}")
    assert {
        "POST /v1/admin/provider-keys",
        "GET /v1/user/provider-keys",
        "GET /v1/admin/apps/{public_app_id}/secret-keys",
        "POST /v1/sessions",
    } <= driven
    assert csv_seen >= 1 or not any(p.endswith(".csv") for p in openapi["paths"])
    for report in ("usage", "revenue", "payouts"):
        response = api.get(f"/v1/admin/reports/{report}.csv", headers=ADMIN)
        scanner.check(f"{report}.csv", response.text)

    with database.read() as conn:
        for row in conn.execute(select(audit_log)):
            scanner.check(f"audit_log row {row.id}", repr(dict(row._mapping)))
    scanner.check("captured logs", "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records))
    assert scanner.scanned > 100


def cli_commands() -> list[list[str]]:
    root = typer.main.get_command(cli_app)
    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        subcommands = getattr(command, "commands", None)  # a group (typer vendors click)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, [*path, name])
        else:
            found.append(path)

    walk(root, [])
    return found


# Arguments for commands that need them; every other command runs with its defaults.
CLI_ARGUMENTS: dict[str, list[list[str]]] = {
    "reports": [["usage"], ["revenue"], ["payouts"]],
    "reconcile": [[], ["--json"]],
    "audit verify": [[], ["--json"]],
}
NOT_RUN_IN_PROCESS = {"serve"}  # blocks; covered by the live-server test below


def test_no_cli_command_prints_or_writes_a_secret(
    ctx: ServiceContext,
    db_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    keyed = ServiceContext(db=ctx.db, settings=with_settings(ctx.settings, secret_key=SECRET_KEY))
    seeded = seed_demo_data(keyed)
    from modelfaucet.domain.ledger import OwnerScope
    from modelfaucet.services import provider_keys as vault
    from modelfaucet.services.app_secret_keys import issue_secret_key
    from modelfaucet.services.context import Actor
    from modelfaucet.services.provider_keys import KeyOwner

    app_key = issue_secret_key(keyed, Actor("alice"), public_app_id=seeded.public_app_id, name="cli harness")

    vault.add_provider_key(
        keyed,
        owner=KeyOwner(OwnerScope.PLATFORM, "platform"),
        provider="openai",
        api_key=PLATFORM_KEY,
        base_url=None,
        models_allowed=None,
        actor=Actor("alice"),
    )
    vault.add_provider_key(
        keyed,
        owner=KeyOwner(OwnerScope.END_USER, seeded.end_user_id),
        provider="anthropic",
        api_key=BYOK_KEY,
        base_url=None,
        models_allowed=None,
        actor=Actor("end_user"),
    )
    scanner = Scanner()
    new_secret_key = generate_key()
    for name, secret in {
        "platform_key": PLATFORM_KEY,
        "byok_key": BYOK_KEY,
        "webhook_secret": WEBHOOK_SECRET,
        "admin_token": ADMIN_TOKEN,
        "gateway_token": GATEWAY_TOKEN,
        "secret_key": SECRET_KEY,
        "new_secret_key": new_secret_key,
        "app_secret_key": app_key.secret_key,
    }.items():
        scanner.plant(name, secret)
    monkeypatch.chdir(tmp_path)
    env = {
        "DATABASE_URL": db_url,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "GATEWAY_SERVICE_TOKEN": GATEWAY_TOKEN,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MODELFAUCET_SECRET_KEY": SECRET_KEY,
        # replay: a local port with nothing listening, so it fails fast without leaving the machine
        "MODELFAUCET_API_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "STRIPE_CHECKOUT_SESSION_ID": "cs_test_leak",
    }
    runner = CliRunner()
    commands = cli_commands()
    assert ["audit", "verify"] in commands and ["secrets", "rotate"] in commands
    ran = 0
    exit_codes: dict[str, int] = {}
    for command in commands:
        key = " ".join(command)
        runner.invoke(cli_app, [*command, "--help"], env=env)
        if key in NOT_RUN_IN_PROCESS:
            continue
        for args in CLI_ARGUMENTS.get(key, [[]]):
            output_file = tmp_path / f"out-{ran}.csv"
            extra = ["-o", str(output_file)] if command == ["reports"] else []
            run_env = env
            if key == "secrets rotate":
                run_env = {
                    **env,
                    "MODELFAUCET_SECRET_KEY": new_secret_key,
                    "MODELFAUCET_SECRET_KEY_PREVIOUS": SECRET_KEY,
                }
            result = runner.invoke(cli_app, [*command, *args, *extra], env=run_env)
            ran += 1
            exit_codes[f"{key} {' '.join(args)}".strip()] = result.exit_code
            where = f"modelfaucet {key} {' '.join(args)} (exit {result.exit_code})"
            assert not isinstance(result.exception, AssertionError)
            scanner.check(where, result.output + repr(result.exception or ""))
            if output_file.exists():
                scanner.check(f"{where} file", output_file.read_text())
    assert ran >= 8
    for must_succeed in ("reports usage", "seed", "audit verify", "secrets rotate", "reconcile"):
        assert exit_codes[must_succeed] == 0, (must_succeed, exit_codes)
    with ctx.db.read() as conn:
        for row in conn.execute(select(audit_log)):
            scanner.check(f"audit_log row {row.id}", repr(dict(row._mapping)))
    scanner.check("captured logs", "\n".join(r.getMessage() for r in caplog.records))


def test_the_live_server_log_never_contains_a_secret(settings: Settings, tmp_path: Path) -> None:
    planted = with_settings(settings, admin_token=ADMIN_TOKEN, gateway_service_token=GATEWAY_TOKEN)
    server = start_live_server(
        planted,
        tmp_path,
        {
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "MODELFAUCET_SECRET_KEY": SECRET_KEY,
            "MODELFAUCET_ENV": "development",
        },
    )
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            responses = [
                http.get("/v1/admin/wallets", headers=ADMIN),
                http.get("/v1/admin/wallets", headers={"Authorization": f"Bearer {WEBHOOK_SECRET}"}),
                http.post(
                    "/v1/admin/provider-keys",
                    headers=ADMIN,
                    json={"owner_scope": "platform", "provider": "openai", "api_key": HOSTILE_KEY},
                ),
                http.post(
                    "/v1/admin/provider-keys",
                    headers=ADMIN,
                    json={"owner_scope": "platform", "provider": "openai", "api_key": PLATFORM_KEY},
                ),
                http.get("/v1/admin/provider-keys", headers=ADMIN),
                http.post(
                    "/v1/stripe/webhook",
                    content=b'{"id": "evt_x"}',
                    headers={"Stripe-Signature": f"t=1,v1={WEBHOOK_SECRET}"},
                ),
                http.get("/metrics"),
            ]
    finally:
        server.stop()
    scanner = Scanner()
    for name, secret in {
        "platform_key": PLATFORM_KEY,
        "hostile_key": HOSTILE_KEY,
        "webhook_secret": WEBHOOK_SECRET,
        "admin_token": ADMIN_TOKEN,
        "gateway_token": GATEWAY_TOKEN,
        "secret_key": SECRET_KEY,
    }.items():
        scanner.plant(name, secret)
    for response in responses:
        assert response.status_code < 500, response.text
        scanner.check(f"{response.request.method} {response.request.url.path}", response.text)
        scanner.check(f"{response.request.url.path} headers", json.dumps(dict(response.headers)))
    scanner.check("server log", server.log_path.read_text(errors="replace"))
