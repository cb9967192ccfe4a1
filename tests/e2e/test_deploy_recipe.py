"""The deploy recipe: a Dockerfile and a compose file for the service on PostgreSQL, and
deploy/smoke.sh, which runs the recipe's steps on a machine that cannot build images
(migrate a fresh PostgreSQL database, serve with several workers, check /health and /ready,
SIGTERM, exit 0). CI runs the script in full (a fresh virtualenv); here it reuses this
interpreter's installed package."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import postgres_server_url

ROOT = Path(__file__).resolve().parents[2]


def test_the_image_runs_the_service_as_an_unprivileged_user_on_postgresql_with_workers() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0"), "the service must not run as root"
    assert re.search(r'^CMD \["serve", "--workers", "\d+"\]', dockerfile, flags=re.MULTILINE)
    assert "MODELFAUCET_ENV=production" in dockerfile and "LOG_FORMAT=json" in dockerfile
    assert "HEALTHCHECK" in dockerfile and "/ready" in dockerfile


def test_the_compose_file_migrates_postgresql_before_serving() -> None:
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    assert "image: postgres:" in compose
    assert "DATABASE_URL: postgresql://" in compose
    assert 'command: ["db", "upgrade"]' in compose
    assert "service_completed_successfully" in compose
    assert 'command: ["serve", "--workers"' in compose


def test_the_recipe_migrates_a_fresh_postgresql_database_serves_answers_health_and_stops_cleanly() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MODELFAUCET_", "STRIPE_", "ADMIN_"))}
    environment.update(MODELFAUCET_SMOKE_POSTGRES_URL=postgres_server_url(), SMOKE_PYTHON=sys.executable)
    result = subprocess.run(
        ["bash", str(ROOT / "deploy" / "smoke.sh")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "smoke: ok"
